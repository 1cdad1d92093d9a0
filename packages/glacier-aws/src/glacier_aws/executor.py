"""The Lambda executor: each step is a synchronous invocation of the task's function.

It is a :class:`~glacier.plugins.remote.RemoteExecutor`: the base class finds the task's
function in the deployment manifest that ``mode="generate"`` wrote, builds the payload
and names the function (and its CloudWatch log group) in a step's error. This module
adds the Lambda call: a function error (the handler crashed, or Lambda stopped it at
its timeout) comes back as a Glacier error naming the step and the function;
Glacier's own ``retries=`` applies, so boto3's retries are turned off.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from glacier.errors import StepError, StepTimeoutError
from glacier.plugins.remote import RemoteExecutor

from glacier_aws.config import LAMBDA_LIMITS

if TYPE_CHECKING:
    from glacier.plugins.deployment import DeploymentEntry

    from glacier_aws.config import AwsConfig, LambdaConfig

__all__ = ["LambdaExecutor"]


class LambdaExecutor(RemoteExecutor):
    """Runs steps as AWS Lambda invocations (``provider.serverless(config=LambdaConfig(...))``)."""

    kind: ClassVar[str] = "lambda"
    function_label: ClassVar[str] = "Lambda function"
    max_timeout_s: ClassVar[float | None] = LAMBDA_LIMITS["timeout_s"][1]
    max_timeout_text: ClassVar[str] = "Lambda's limit of 900 s"
    stopped_by: ClassVar[str] = "Lambda"
    config: LambdaConfig

    def invoke_function(self, entry: DeploymentEntry, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke ``entry``'s function synchronously and return the handler's result dict."""
        step = str(payload.get("step"))
        function = entry.function_name
        logs = f"see the function's logs in {self.logs_hint(entry) or f'CloudWatch (/aws/lambda/{function})'}"
        client = self._client()
        try:
            response = client.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(payload).encode())
        except client.exceptions.ResourceNotFoundException as exc:
            msg = f"Lambda function {function!r} does not exist in {self._aws.region}"
            raise StepError(step, msg, hint="deploy it: `terraform apply` in the directory `generate` wrote") from exc
        body = response["Payload"].read()
        try:
            result = json.loads(body or b"null")
        except ValueError:
            result = {"errorMessage": body.decode(errors="replace")[:2000]}
        if response.get("FunctionError"):
            error = result if isinstance(result, dict) else {}
            kind = str(error.get("errorType", "Unhandled"))
            message = str(error.get("errorMessage", ""))
            uri = (payload.get("target") or {}).get("uri")
            if kind == "Sandbox.Timedout" or "timed out" in message:
                msg = f"Lambda function {function!r} ran past its timeout of {self.config.timeout}s and was stopped ({message}); the target was left as it was"
                raise StepTimeoutError(step, msg, uri=uri, hint="raise LambdaConfig(timeout=...) (at most 900 s) or make the step do less work")
            msg = f"Lambda function {function!r} failed: {kind}: {message}"
            raise StepError(step, msg, uri=uri, hint=logs)
        if not isinstance(result, dict):
            msg = f"Lambda function {function!r} returned {str(result)[:200]!r}, not a Glacier result"
            raise StepError(step, msg, hint="the function's handler must be glacier_aws.handler.handler")
        return result


    @property
    def _aws(self) -> AwsConfig:
        config: AwsConfig = self.provider.config
        return config

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        aws = self._aws
        session = boto3.session.Session(profile_name=aws.profile, region_name=aws.region)
        timeouts = Config(read_timeout=self.config.timeout + 60, connect_timeout=10, retries={"max_attempts": 1, "mode": "standard"})
        return session.client("lambda", endpoint_url=aws.endpoint_for("lambda"), config=timeouts)
