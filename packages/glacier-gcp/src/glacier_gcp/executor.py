"""The Cloud Functions executor: each step is one HTTPS request to the task's function.

It is a :class:`~glacier.plugins.remote.RemoteExecutor`: the base class finds the task's
function in the deployment manifest that ``mode="generate"`` wrote (its ``"url"``
extra), builds the payload and names the function (and its Cloud Logging filter) in a
step's error. This module adds the call: the payload is POSTed as JSON with a Google ID
token for the function's URL (from Application Default Credentials, through
google-auth), and the response waited for up to the function's timeout. HTTP errors
become Glacier errors: 401/403 names the missing ``roles/run.invoker``, a 504 (Cloud
Run's answer at the request timeout) or no answer in time is a
:class:`~glacier.errors.StepTimeoutError`, any other error names the function and its
logs. Glacier's own ``retries=`` applies, so nothing here retries.

A plain ``http://`` URL on the loopback interface (a function served locally by
functions-framework) gets no token: nothing there checks one, and no credential is
sent unencrypted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlparse

from glacier.errors import StepError, StepTimeoutError
from glacier.plugins.remote import RemoteExecutor

from glacier_gcp.config import CLOUD_FUNCTION_LIMITS

if TYPE_CHECKING:
    from glacier.plugins.deployment import DeploymentEntry

    from glacier_gcp.config import CloudFunctionConfig, GcpConfig

__all__ = ["CloudFunctionExecutor", "logging_filter", "needs_token"]

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def logging_filter(function: str) -> str:
    """The Cloud Logging filter of a gen2 function's logs (its Cloud Run service).

    Examples
    --------
    >>> logging_filter("etl-transform")
    'resource.type="cloud_run_revision" AND resource.labels.service_name="etl-transform"'
    """
    return f'resource.type="cloud_run_revision" AND resource.labels.service_name="{function}"'


def needs_token(url: str) -> bool:
    """Whether a request to ``url`` carries an ID token: every URL but plain ``http://`` on the loopback interface.

    Examples
    --------
    >>> needs_token("https://europe-west1-p.cloudfunctions.net/etl-transform"), needs_token("http://127.0.0.1:8080/")
    (True, False)
    """
    parsed = urlparse(url)
    return not (parsed.scheme == "http" and (parsed.hostname or "") in _LOOPBACK)


class CloudFunctionExecutor(RemoteExecutor):
    """Runs steps as requests to Cloud Functions (gen2) (``provider.serverless(config=CloudFunctionConfig(...))``)."""

    kind: ClassVar[str] = "cloudfunction"
    function_label: ClassVar[str] = "Cloud Function"
    max_timeout_s: ClassVar[float | None] = CLOUD_FUNCTION_LIMITS["timeout_s"][1]
    max_timeout_text: ClassVar[str] = "Cloud Functions' limit of 3,600 s for an HTTP function"
    stopped_by: ClassVar[str] = "Cloud Functions"
    config: CloudFunctionConfig

    def invoke_function(self, entry: DeploymentEntry, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``entry``'s URL and return the handler's result dict."""
        import requests

        step = str(payload.get("step"))
        function = entry.function_name
        uri = (payload.get("target") or {}).get("uri")
        url = entry.extras.get("url")
        if not url:
            msg = f"the deployment manifest gives no URL for Cloud Function {function!r}"
            raise StepError(step, msg, hint="run generate and `terraform apply` again; the manifest records each function's URL")
        headers = {"Content-Type": "application/json"}
        if needs_token(url):
            headers["Authorization"] = f"Bearer {self._id_token(url, step)}"
        try:
            response = requests.post(url, data=json.dumps(payload), headers=headers, timeout=(10, self.config.timeout + 30))
        except requests.exceptions.Timeout as exc:
            msg = f"Cloud Function {function!r} did not answer within its timeout of {self.config.timeout}s"
            raise StepTimeoutError(step, msg, uri=uri, hint=self._timeout_hint) from exc
        except requests.exceptions.ConnectionError as exc:
            msg = f"cannot reach Cloud Function {function!r} at {url} ({exc})"
            raise StepError(step, msg, uri=uri, hint="check the URL in the deployment manifest and this machine's network access") from exc
        status = response.status_code
        if status in (401, 403):
            msg = f"Cloud Function {function!r} refused the request (HTTP {status}): the identity running the pipeline lacks roles/run.invoker on it"
            hint = (
                f"grant it: `gcloud functions add-invoker-policy-binding {function} --region={self._gcp.region} --member=user:YOU` "
                "(or set the generated Terraform's invoker variable and apply); an ID token needs a service account's "
                "credentials in Application Default Credentials"
            )
            raise StepError(step, msg, uri=uri, hint=hint)
        if status in (408, 504):
            msg = f"Cloud Function {function!r} ran past its timeout of {self.config.timeout}s and was stopped (HTTP {status}); the target was left as it was"
            raise StepTimeoutError(step, msg, uri=uri, hint=self._timeout_hint)
        if status == 404:
            msg = f"Cloud Function {function!r} does not exist at {url} (HTTP 404)"
            raise StepError(step, msg, uri=uri, hint="deploy it: `terraform apply` in the directory `generate` wrote")
        if status >= 300:
            msg = f"Cloud Function {function!r} failed: HTTP {status}: {response.text[:500]}"
            raise StepError(step, msg, uri=uri, hint=self._logs(entry))
        try:
            result = response.json()
        except ValueError:
            result = None
        if not isinstance(result, dict):
            msg = f"Cloud Function {function!r} returned {response.text[:200]!r}, not a Glacier result"
            raise StepError(step, msg, uri=uri, hint="the function's entry point must be glacier_gcp.handler.handler")
        return result

    def logs_hint(self, entry: DeploymentEntry) -> str | None:
        """Where the function's logs are: the manifest's ``"logs"``, else its Cloud Logging filter."""
        return entry.logs or f"Cloud Logging ({logging_filter(entry.function_name)})"


    @property
    def _gcp(self) -> GcpConfig:
        config: GcpConfig = self.provider.config
        return config

    @property
    def _timeout_hint(self) -> str:
        return "raise CloudFunctionConfig(timeout=...) (at most 3,600 s) or make the step do less work"

    def _logs(self, entry: DeploymentEntry) -> str:
        return f"see the function's logs in {self.logs_hint(entry)}"

    def _id_token(self, url: str, step: str) -> str:
        """An ID token for ``url`` from Application Default Credentials."""
        import google.auth.exceptions
        import google.auth.transport.requests
        import google.oauth2.id_token

        try:
            token = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), url)
        except google.auth.exceptions.GoogleAuthError as exc:
            msg = f"cannot get a Google ID token to invoke {url} ({exc})"
            hint = (
                "Application Default Credentials must be a service account's: set GOOGLE_APPLICATION_CREDENTIALS, run on "
                "Google Cloud, or `gcloud auth application-default login --impersonate-service-account=SA`"
            )
            raise StepError(step, msg, hint=hint) from exc
        return str(token)
