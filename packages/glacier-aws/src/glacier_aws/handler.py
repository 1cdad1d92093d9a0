"""The Lambda handler: ``glacier_aws.handler.handler``, the same step code as the local runner.

The function receives the executor protocol's JSON payload (run id, task reference,
source and target buckets) and returns its result (rows, bytes, seconds, or a
structured error). Errors are returned, not raised: a step's failure is data for the
orchestrator, which decides about retries; a raised error would be reported by Lambda
as an unhandled function error instead.

Whoever may invoke the function writes its payload, so the payload chooses no code: the
function runs only the task named by its ``GLACIER_TASK`` environment variable
(``"module:qualname"``, set by the generated Terraform) and refuses a payload naming
another module, another qualname or a file, and bucket configs are rebuilt only from
config classes of installed plugins (see :func:`glacier.run.protocol.handle_deployed`).
Inside Lambda the process executes steps only, so it starts no pipeline run: a task
module's module-level ``pipeline.run()`` is skipped with a one-line notice in the logs.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from glacier.run.protocol import handle_deployed, mark_step_process

__all__ = ["handler"]

log = logging.getLogger("glacier")
log.setLevel(logging.INFO)

if os.environ.get("AWS_LAMBDA_RUNTIME_API"):  # inside a Lambda sandbox, which only runs steps
    mark_step_process()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the step that ``event`` describes, if it is this function's task, and return the protocol's result."""
    about = event if isinstance(event, dict) else {}
    log.info("glacier step %s (run %s, attempt %s)", about.get("step"), about.get("run_id"), about.get("attempt"))
    result = handle_deployed(event)
    if not result.get("ok"):
        log.error("glacier step %s failed: %s", about.get("step"), (result.get("error") or {}).get("message"))
    return result
