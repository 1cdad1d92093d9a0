"""The Lambda handler: ``glacier_aws.handler.handler``, the same step code as the local runner.

The function receives the executor protocol's JSON payload (run id, task reference,
source and target buckets) and returns its result (rows, bytes, seconds, or a
structured error). Errors are returned, not raised: a step's failure is data for the
orchestrator, which decides about retries; a raised error would be reported by Lambda
as an unhandled function error instead.
"""

from __future__ import annotations

import logging
from typing import Any

from glacier.protocol import handle

__all__ = ["handler"]

log = logging.getLogger("glacier")
log.setLevel(logging.INFO)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the step that ``event`` describes and return the protocol's result."""
    log.info("glacier step %s (run %s, attempt %s)", event.get("step"), event.get("run_id"), event.get("attempt"))
    result = handle(event)
    if not result.get("ok"):
        log.error("glacier step %s failed: %s", event.get("step"), (result.get("error") or {}).get("message"))
    return result
