"""The executor protocol: one JSON payload in, one JSON result out.

Every executor that runs a step somewhere else (a worker process, AWS Lambda, Cloud
Functions, Azure Functions) sends the same payload and gets the same result back::

    payload = {
        "protocol": 1,
        "run_id": "20260101T000000-1a2b3c",
        "step": "double",
        "attempt": 1,
        "task": {"module": "pipelines.etl", "qualname": "double", "file": "/abs/pipelines/etl.py"},
        "sources": {"df": {"uri": "s3://lake/raw.parquet", "config": {...}}},
        "target": {"uri": "s3://lake/out.parquet", "config": {...}},
    }
    result = {"ok": True, "rows": 10, "bytes": 2048, "seconds": 0.4, "fingerprint": "ETag=...;size=2048"}
    result = {"ok": False, "error": {"type": "SourceNotFoundError", "step": ..., "uri": ..., ...}}

Configs carry names and endpoints, never secrets: each side uses its own credentials.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from glacier.errors import StepError, error_from_dict

if TYPE_CHECKING:
    from glacier.dag import TaskInstance
    from glacier.step import StepOutcome

__all__ = ["PROTOCOL_VERSION", "build_payload", "handle", "outcome_from_result", "load_task"]

#: Bumped when the payload or result changes shape.
PROTOCOL_VERSION = 1


def build_payload(instance: TaskInstance, run_id: str, attempt: int = 1) -> dict[str, Any]:
    """The JSON payload that asks an executor to run ``instance``.

    Raises
    ------
    StepError
        When the task cannot be imported by another process (defined inside a function).
    """
    ref = instance.task.reference()
    if "<locals>" in ref.qualname:
        msg = f"task {instance.task.name!r} is defined inside a function ({ref.qualname}), so another process cannot import it"
        raise StepError(instance.name, msg, hint="define the task's function at module level; a worker or serverless function imports it by name")
    return {
        "protocol": PROTOCOL_VERSION,
        "run_id": run_id,
        "step": instance.name,
        "attempt": attempt,
        "task": ref.to_dict(),
        "sources": {param: bucket.to_dict() for param, bucket in instance.sources.items()},
        "target": instance.target.to_dict(),
    }


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    """Run the step a payload describes, here, and return the result dict. Never raises.

    This is what a worker process and every serverless handler call.
    """
    from glacier.bucket import Bucket
    from glacier.step import execute_step
    from glacier.task import TaskRef

    step = str(payload.get("step", "?"))
    try:
        if payload.get("protocol") != PROTOCOL_VERSION:
            msg = f"payload protocol {payload.get('protocol')!r} is not {PROTOCOL_VERSION}: deploy the same Glacier version that runs the pipeline"
            raise StepError(step, msg)
        ref = TaskRef.from_dict(payload["task"])
        try:
            func = load_task(ref)
        except Exception as exc:
            where = ref.file or ref.module
            msg = f"could not load task {ref.qualname!r} from {where} ({type(exc).__name__}: {exc})"
            err = StepError(step, msg, hint="the task's module must import cleanly where the step runs (same code, same dependencies)")
            err.traceback = traceback.format_exc()  # type: ignore[attr-defined]
            raise err from exc
        sources = {param: Bucket.from_dict(data) for param, data in payload["sources"].items()}
        target = Bucket.from_dict(payload["target"])
        outcome = execute_step(step, func, sources, target)
    except StepError as err:
        data = err.to_dict()
        data["traceback"] = getattr(err, "traceback", None) or traceback.format_exc()
        return {"ok": False, "error": data}
    except Exception as exc:
        data = {"type": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        return {"ok": False, "error": data}
    return {"ok": True, **outcome.to_dict()}


def outcome_from_result(result: dict[str, Any], step: str) -> StepOutcome:
    """Turn a result dict into a :class:`~glacier.step.StepOutcome`, or raise its error."""
    from glacier.step import StepOutcome

    if result.get("ok"):
        return StepOutcome(
            rows=int(result["rows"]), bytes=int(result["bytes"]), seconds=float(result["seconds"]), fingerprint=result.get("fingerprint")
        )
    raise error_from_dict(result.get("error") or {}, step)


_load_lock = threading.Lock()


def load_task(ref: Any) -> Callable[..., Any]:
    """The function behind a task reference: import its module (or load its file) and look it up."""
    from glacier.task import Task

    module = _import_module(ref.module, ref.file)
    obj: Any = module
    for part in ref.qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, Task):
        return obj.func
    for value in vars(module).values():  # decorated under another variable name
        if isinstance(value, Task) and value.func.__qualname__ == ref.qualname:
            return value.func
    if callable(obj):
        return obj  # type: ignore[no-any-return]
    msg = f"module {ref.module!r} has no task {ref.qualname!r}"
    raise ImportError(msg)


def _importable_as(name: str, file: str | None) -> bool:
    """Whether importing ``name`` gives the task's own file (not another module of that name)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if not file or not os.path.exists(file) or not spec.origin or not os.path.exists(spec.origin):
        return True
    return os.path.samefile(spec.origin, file)


def _import_module(name: str, file: str | None) -> Any:
    if file:
        folder = os.path.dirname(file)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    if name not in ("__main__", "__mp_main__") and _importable_as(name, file):
        return importlib.import_module(name)
    if not file:
        msg = f"cannot import task module {name!r}: no file is known for it"
        raise ImportError(msg)
    # A script's tasks: load the file under a private name, so its
    # `if __name__ == "__main__":` block does not run again here.
    alias = f"__glacier_file__{abs(hash(os.path.abspath(file)))}"
    with _load_lock:
        if alias in sys.modules:
            return sys.modules[alias]
        spec = importlib.util.spec_from_file_location(alias, file)
        if spec is None or spec.loader is None:
            msg = f"cannot load task module from {file}"
            raise ImportError(msg)
        module = importlib.util.module_from_spec(spec)
        sys.modules[alias] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[alias]
            raise
        return module
