"""The Lambda executor: each step is a synchronous invocation of the task's function.

Which function runs which task is read from the deployment manifest that
``mode="generate"`` wrote. A function error (the handler crashed, or Lambda stopped it
at its timeout) comes back as a Glacier error naming the step and the function;
Glacier's own ``retries=`` applies, so boto3's retries are turned off.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from glacier.errors import StepError, StepTimeoutError
from glacier.plugins.executor import Executor
from glacier.plugins.payload import build_payload, outcome_from_result

if TYPE_CHECKING:
    from glacier.dag import TaskInstance
    from glacier.plugins.payload import StepOutcome

    from glacier_aws.config import AwsConfig, LambdaConfig

__all__ = ["LambdaExecutor"]


class LambdaExecutor(Executor):
    """Runs steps as AWS Lambda invocations (``provider.serverless(config=LambdaConfig(...))``)."""

    kind: ClassVar[str] = "lambda"
    runs_here: ClassVar[bool] = False
    needs_deployment: ClassVar[bool] = True
    config: LambdaConfig

    def run(self, instance: TaskInstance, run_id: str, attempt: int = 1, **context: Any) -> StepOutcome:
        """Invoke the task's deployed function for this step."""
        deployment = context.get("deployment") or {}
        entry = deployment.get("functions", {}).get(instance.task.name)
        if entry is None:
            msg = f"task {instance.task.name!r} has no deployed Lambda function in the deployment manifest"
            raise StepError(instance.name, msg, hint="run generate again and `terraform apply` it: the pipeline changed since it was deployed")
        payload = build_payload(instance, run_id, attempt)
        # Inside the artifact the task's module is imported by name, never by a local path.
        payload["task"] = {"module": entry["module"], "qualname": entry["qualname"], "file": None}
        payload["function"] = function = entry["function_name"]
        try:
            return outcome_from_result(self.invoke(payload), instance.name)
        except StepError as err:
            if f"Lambda function {function!r}" in err.what:
                raise
            # The step failed inside the function: say which one, and where its logs are.
            hint = f"{err.hint + '; ' if err.hint else ''}the function's logs are in CloudWatch (/aws/lambda/{function})"
            named = type(err)(err.step, f"{err.what} (in Lambda function {function!r})", uri=err.uri, hint=hint)
            named.traceback = getattr(err, "traceback", None)  # type: ignore[attr-defined]
            raise named from err

    def invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke ``payload["function"]`` synchronously and return the handler's result dict."""
        step = str(payload.get("step"))
        function = str(payload["function"])
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
            raise StepError(step, msg, uri=uri, hint=f"see the function's logs in CloudWatch (/aws/lambda/{function})")
        if not isinstance(result, dict):
            msg = f"Lambda function {function!r} returned {str(result)[:200]!r}, not a Glacier result"
            raise StepError(step, msg, hint="the function's handler must be glacier_aws.handler.handler")
        return result

    def problems(self, instance: TaskInstance) -> list[str]:
        """Lambda limits the step breaks: a task timeout over the function's or over 900 s."""
        from glacier_aws.config import LAMBDA_LIMITS

        found = []
        timeout = instance.task.timeout
        if timeout is not None and timeout > LAMBDA_LIMITS["timeout_s"][1]:
            found.append(f"timeout={timeout:g}s is over Lambda's limit of 900 s")
        elif timeout is not None and timeout > self.config.timeout:
            found.append(f"timeout={timeout:g}s is over the function's LambdaConfig(timeout={self.config.timeout}); Lambda stops it first")
        return found

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
