"""The Azure Functions executor: each step is a message on its function's queue, its result a blob.

An HTTP-triggered function must answer within 230 s, while a step may run for as long
as its ``AzureFunctionConfig(timeout)`` allows. So the executor does not call the
function over HTTP: it puts the protocol's payload on the function app's own Storage
queue (base64, as the queue trigger reads it), and waits for the result blob that the
function's output binding writes to ``<results container>/<run_id>/<step>/<attempt>-<invocation>.json``
(:data:`glacier_azure.handler.RESULT_PATH`). While it waits it watches the poison queue
``<queue>-poison``: a message the Functions host gave up on (the instance died, the
function ran past its timeout) comes back as a Glacier error naming the function and
where its logs are. With no result by the function's timeout (plus a margin for the
queue's polling and a cold start), the step is a :class:`~glacier.errors.StepTimeoutError`.

It is a :class:`~glacier.plugins.remote.RemoteExecutor`: the base class finds the task's
function in the deployment manifest and names it in a step's error. Glacier's own
``retries=`` apply; each attempt is one message (``max_dequeue_count`` deliveries).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, ClassVar

from glacier.errors import StepError, StepTimeoutError
from glacier.plugins.remote import RemoteExecutor

from glacier_azure.config import FLEX_LIMITS

if TYPE_CHECKING:
    from glacier.plugins.deployment import DeploymentEntry

    from glacier_azure.config import AzureConfig, AzureFunctionConfig

__all__ = ["AzureFunctionsExecutor", "PICKUP_MARGIN_S", "QUEUE_MESSAGE_BYTES"]

#: Seconds allowed beyond the function's timeout for the queue to be polled and an instance to start
#: (a manifest entry's ``pickup_margin_s`` extra overrides it).
PICKUP_MARGIN_S = 120
#: A Storage queue message holds at most 64 KiB (the base64 of the payload).
QUEUE_MESSAGE_BYTES = 65_536


class AzureFunctionsExecutor(RemoteExecutor):
    """Runs steps on Azure Functions, queue-triggered (``provider.serverless(config=AzureFunctionConfig(...))``)."""

    kind: ClassVar[str] = "azure-functions"
    function_label: ClassVar[str] = "Azure Function app"
    max_timeout_s: ClassVar[float | None] = FLEX_LIMITS["timeout_s"][1]
    max_timeout_text: ClassVar[str] = "glacier-azure's limit of 14,400 s for a step"
    stopped_by: ClassVar[str] = "the Functions host"
    config: AzureFunctionConfig

    def invoke_function(self, entry: DeploymentEntry, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue ``payload`` for ``entry``'s function app and return the result its function wrote."""
        import base64
        import uuid

        from azure.core.exceptions import ResourceNotFoundError

        step = str(payload.get("step"))
        uri = (payload.get("target") or {}).get("uri")
        app = entry.function_name
        queue_name = str(entry.extras.get("queue") or app)
        results = str(entry.extras.get("results_container") or "glacier-results")
        timeout = float(entry.extras.get("timeout") or self.config.timeout)
        margin = float(entry.extras.get("pickup_margin_s") or PICKUP_MARGIN_S)
        logs = self._logs_sentence(entry)
        payload = {**payload, "invocation": uuid.uuid4().hex}
        text = json.dumps(payload)
        if len(base64.b64encode(text.encode())) > QUEUE_MESSAGE_BYTES:
            msg = f"the step's payload is {len(text):,} bytes, over what one Storage queue message holds (64 KiB as base64)"
            raise StepError(step, msg, hint="give the step fewer or shorter source URIs (a glob instead of a list)")
        queue, poison, result_blob = self._clients(entry, queue_name, results, f"{payload.get('run_id')}/{step}/{payload.get('attempt')}-{payload['invocation']}.json")
        sent = time.monotonic()
        try:
            queue.send_message(text)
        except ResourceNotFoundError as exc:
            msg = f"the queue {queue_name!r} of {self.function_label} {app!r} does not exist in storage account {self._azure.storage_account!r}"
            raise StepError(step, msg, hint="deploy it: `terraform apply` in the directory `generate` wrote") from exc
        pause = 0.1
        while True:
            try:
                data = result_blob.download_blob().readall()
            except ResourceNotFoundError:
                data = None
            if data is not None:
                try:
                    result = json.loads(data)
                except ValueError:
                    result = None
                if not isinstance(result, dict):
                    msg = f"{self.function_label} {app!r} wrote {data[:200]!r}, not a Glacier result"
                    raise StepError(step, msg, hint="the app's function_app.py must be glacier_azure.handler's")
                return result
            elapsed = time.monotonic() - sent
            if self._poisoned(poison, payload):
                if elapsed >= timeout:
                    msg = f"{self.function_label} {app!r} ran past its timeout of {timeout:g}s and was stopped; its message went to the poison queue {queue_name}-poison, the target was left as it was"
                    raise StepTimeoutError(step, msg, uri=uri, hint=f"raise AzureFunctionConfig(timeout=...) (at most 14,400 s) or make the step do less work; {logs}")
                msg = (f"{self.function_label} {app!r} failed to process the step's message (the instance died or the result could not be written); "
                       f"after its deliveries the Functions host moved it to the poison queue {queue_name}-poison")  # fmt: skip
                raise StepError(step, msg, uri=uri, hint=logs)
            if elapsed > timeout + margin:
                msg = f"no result from {self.function_label} {app!r} within its timeout of {timeout:g}s (plus {margin:g}s to be picked up); the message stays on queue {queue_name}"
                raise StepTimeoutError(step, msg, uri=uri, hint=f"check that the app is running and can read its queue; {logs}")
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)


    @property
    def _azure(self) -> AzureConfig:
        config: AzureConfig = self.provider.config
        return config

    def _clients(self, entry: DeploymentEntry, queue_name: str, container: str, blob: str) -> tuple[Any, Any, Any]:
        """The function's queue, its poison queue and the result blob, with the account's key or DefaultAzureCredential.

        They are in the deployment's host account that the manifest names
        (``queue_endpoint``, ``results_endpoint``); an endpoint set in the provider's
        ``AzureConfig`` (Azurite, a private endpoint) takes precedence.
        """
        from azure.storage.blob import BlobClient
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        from glacier_azure.storage import account_key

        config = self._azure
        # The account's key opens the config's own account only; the host account of a
        # real deployment is reached with Entra ID (its shared keys are off).
        own = bool(config.service_endpoints.get("queue")) or not entry.extras.get("queue_endpoint")
        key = account_key(config) if own else None
        credential: Any
        if key:
            credential = {"account_name": config.storage_account, "account_key": key}
        else:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        queues = config.service_endpoints.get("queue") or entry.extras.get("queue_endpoint") or config.endpoint_for("queue")
        blobs = config.service_endpoints.get("blob") or config.endpoint_url or entry.extras.get("results_endpoint") or config.endpoint_for("blob")
        # Base64: what the queue trigger reads (host.json's messageEncoding).
        return (
            QueueClient(queues, queue_name, credential=credential, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()),
            QueueClient(queues, f"{queue_name}-poison", credential=credential, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()),
            BlobClient(blobs, container, blob, credential=credential),
        )

    @staticmethod
    def _poisoned(poison: Any, payload: dict[str, Any]) -> bool:
        """Whether this step's message (same run, step, attempt and invocation) is among the poison queue's first 32."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            peeked = poison.peek_messages(max_messages=32)
        except (ResourceNotFoundError, ValueError):
            return False
        for message in peeked:
            try:
                data = json.loads(message.content)
            except (ValueError, TypeError):
                continue
            if isinstance(data, dict) and all(data.get(k) == payload.get(k) for k in ("run_id", "step", "attempt", "invocation")):
                return True
        return False
