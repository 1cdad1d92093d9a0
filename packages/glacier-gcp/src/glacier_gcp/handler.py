"""The Cloud Functions handler: ``glacier_gcp.handler.handler``, the same step code as the local runner.

An HTTP function with functions-framework's signature (``handler(request)``, a Flask
request): its JSON body is the executor protocol's payload (run id, task reference,
source and target buckets) and the response is the protocol's result (rows, bytes,
seconds, or a structured error), always with status 200. Errors are returned, not
raised: a step's failure is data for the orchestrator, which decides about retries;
a raised error would be a bare 500 from the framework instead.

Whoever may invoke the function writes its payload, so the payload chooses no code: the
function runs only the task named by its ``GLACIER_TASK`` environment variable
(``"module:qualname"``, set by the generated Terraform) and refuses a payload naming
another module, another qualname or a file, and bucket configs are rebuilt only from
config classes of installed plugins (see :func:`glacier.run.protocol.handle_deployed`).
Inside Cloud Functions (``K_SERVICE`` is set) the process executes steps only, so it
starts no pipeline run: a task module's module-level ``pipeline.run()`` is skipped with
a one-line notice in the logs.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from glacier.run.protocol import handle_deployed, mark_step_process

__all__ = ["handler"]

log = logging.getLogger("glacier")
log.setLevel(logging.INFO)

if os.environ.get("K_SERVICE"):  # inside Cloud Functions (Cloud Run), which only runs steps
    mark_step_process()


def handler(request: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Run the step that the request's JSON body describes, if it is this function's task, and return the protocol's result."""
    try:
        event: Any = request.get_json(force=True, silent=True)
        if event is None:
            event = json.loads(request.get_data(as_text=True) or "null")
    except Exception:  # noqa: BLE001 - a body that is not JSON is refused by handle_deployed as data
        event = None
    about = event if isinstance(event, dict) else {}
    log.info("glacier step %s (run %s, attempt %s)", about.get("step"), about.get("run_id"), about.get("attempt"))
    result = handle_deployed(event)
    if not result.get("ok"):
        log.error("glacier step %s failed: %s", about.get("step"), (result.get("error") or {}).get("message"))
    return result, 200, {"Content-Type": "application/json"}
