"""The Azure Functions handler: a v2-model, queue-triggered function app running the same step code as the local runner.

Azure gives an HTTP-triggered function 230 s to answer, while a step may run for an
hour, so a step is a *queue-triggered* function instead: the executor puts the
protocol's JSON payload on the function's own Storage queue, :func:`run_message` runs
it through :func:`glacier.run.protocol.handle_deployed`, and the result goes out
through a blob output binding to
``<results container>/<run_id>/<step>/<attempt>-<invocation>.json`` (``invocation`` is a
fresh id the executor adds to each message), which the executor waits for. The
artifact's ``function_app.py`` is :data:`FUNCTION_APP`::

    from glacier_azure.handler import build_app

    app = build_app()

Errors of a step are returned as data, never raised: a raised error would make the
Functions host deliver the message again (up to ``maxDequeueCount``) and then move it to
the poison queue, which is kept for what is not a step's failure (the instance dying,
the result not being writable). A message delivered twice runs the step twice; the
target is written in one atomic upload, so it is whole either way.

Whoever may write to the queue writes the payload, so the payload chooses no code: the
function runs only the task named by its ``GLACIER_TASK`` app setting (see
:func:`glacier.run.protocol.handle_deployed`). The process executes steps only, so it
starts no pipeline run.

App settings the function reads: ``GLACIER_QUEUE`` (its queue), ``GLACIER_RESULTS_CONTAINER``
and the connection ``GLACIER_STORAGE`` (``GLACIER_STORAGE__queueServiceUri``,
``__blobServiceUri``, ``__credential=managedidentity`` and ``__clientId`` with the
function's user-assigned identity).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from glacier.run.protocol import handle_deployed, mark_step_process

__all__ = ["FUNCTION_APP", "FUNCTION_NAME", "RESULT_PATH", "build_app", "run_message"]

log = logging.getLogger("glacier")
log.setLevel(logging.INFO)

#: The name of the function inside each function app (the host calls it ``Functions.glacier_step``).
FUNCTION_NAME = "glacier_step"

#: The result blob's path, a binding expression: app setting ``%...%`` and the payload's JSON fields.
#: ``invocation`` keeps a resent attempt (same run, step and attempt) from finding an old result.
RESULT_PATH = "%GLACIER_RESULTS_CONTAINER%/{run_id}/{step}/{attempt}-{invocation}.json"

#: The artifact's ``function_app.py``: the Functions host imports it and finds ``app``.
FUNCTION_APP = '''"""Glacier's function app (generated): one queue-triggered function running one pipeline task."""

from glacier_azure.handler import build_app

app = build_app()
'''

if os.environ.get("FUNCTIONS_WORKER_RUNTIME") or os.environ.get("GLACIER_AZURE_FUNCTION"):  # inside a function app, which only runs steps
    mark_step_process()


def run_message(body: bytes | str, dequeue_count: int | None = None) -> dict[str, Any]:
    """Run the step that a queue message's ``body`` describes, and return the protocol's result.

    Never raises for a step's failure, nor for a message that is not a payload: both
    come back as ``{"ok": False, "error": ...}``.
    """
    try:
        payload = json.loads(body)
    except ValueError as exc:
        return {"ok": False, "error": {"type": "PayloadError", "step": "?", "message": f"the queue message is not JSON: {exc}"}}
    about = payload if isinstance(payload, dict) else {}
    log.info("glacier step %s (run %s, attempt %s, delivery %s)", about.get("step"), about.get("run_id"), about.get("attempt"), dequeue_count)
    result = handle_deployed(payload)
    if not result.get("ok"):
        log.error("glacier step %s failed: %s", about.get("step"), (result.get("error") or {}).get("message"))
    return result


def build_app() -> Any:
    """The ``azure.functions.FunctionApp`` with the one queue-triggered step function.

    Examples
    --------
    >>> (function,) = build_app().get_functions()  # get_functions() may be called once per app
    >>> function.get_function_name(), sorted(b.type for b in function.get_bindings())
    ('glacier_step', ['blob', 'queueTrigger'])
    """
    import azure.functions as func

    app = func.FunctionApp()

    @app.function_name(name=FUNCTION_NAME)
    @app.queue_trigger(arg_name="msg", queue_name="%GLACIER_QUEUE%", connection="GLACIER_STORAGE")
    @app.blob_output(arg_name="result", path=RESULT_PATH, connection="GLACIER_STORAGE")
    def glacier_step(msg: func.QueueMessage, result: func.Out[str]) -> None:
        result.set(json.dumps(run_message(msg.get_body(), getattr(msg, "dequeue_count", None))))

    return app
