"""Where a step runs: one JSON payload in, one JSON result out.

This module is the side where a step runs: :func:`handle` takes the payload that
:func:`glacier.plugins.payload.build_payload` made (its full shape is documented there,
once) and returns the result dict. A worker process and every serverless handler call it.

**What a payload may ask for.** Whoever may invoke a function (or write to its queue)
writes its payload, so a payload never chooses code:

- **Config types**: a bucket's ``config.type`` must be ``"module:Class"`` of a config class
  that an installed plugin returns from the ``glacier_configs`` hook (``LocalConfig``,
  ``AwsConfig``, ...), and ``fields`` a JSON object of its fields. Any other type is
  refused before anything is imported.
- **Tasks, in a deployed function**: a deployed function runs only the task it was
  deployed for, named by its ``GLACIER_TASK`` environment variable
  (``"module:qualname"``, set by the generated infrastructure);
  :func:`handle_deployed` refuses a payload that names another module or qualname, or
  any ``file``.
- **Tasks, in a local worker** (``python -m glacier.run.worker``, started by this machine's
  own runner): the payload may name a script by ``file``, as the runner does for
  ``python script.py``.

Refusals come back as ``{"ok": False, "error": ...}`` like any step failure.

Importing a task's module where the step runs never runs that module's pipeline: a
script's module-level ``pipeline.run()`` is skipped there with a one-line notice on
standard error, and a process that executes steps (``GLACIER_STEP_PROCESS=1``, set for
every worker and deployed function) refuses to start a run at all.
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

from glacier._guard import STEP_PROCESS_ENV, importing_task_module, mark_step_process
from glacier.errors import StepError
from glacier.plugins.payload import PROTOCOL_VERSION

if TYPE_CHECKING:
    from glacier.bucket import Bucket
    from glacier.task import TaskRef

__all__ = ["TASK_ENV", "STEP_PROCESS_ENV", "handle", "handle_deployed", "mark_step_process", "load_task"]


#: The environment variable of a deployed function that names its one task, ``"module:qualname"``.
TASK_ENV = "GLACIER_TASK"

def handle(payload: dict[str, Any], *, task: str | None = None) -> dict[str, Any]:
    """Run the step a payload describes, here, and return the result dict. Never raises.

    This is what a worker process and every serverless handler call. Every bucket
    config is checked against the installed plugins' config classes, and the task
    against ``task``, before any of the payload's code is imported.

    Parameters
    ----------
    payload
        The executor protocol's payload (see the module docs).
    task
        The only task this place may run, as ``"module:qualname"`` (a deployed
        function's ``GLACIER_TASK``): a payload naming another task, or any file, is
        refused. ``None`` (a local worker) loads whatever task the payload names.
    """
    from glacier.run.step import execute_step

    step = _step_name(payload)
    try:
        if not isinstance(payload, dict):
            raise StepError(step, f"the payload must be a JSON object, got {type(payload).__name__}")
        if payload.get("protocol") != PROTOCOL_VERSION:
            msg = f"payload protocol {payload.get('protocol')!r} is not {PROTOCOL_VERSION}: deploy the same Glacier version that runs the pipeline"
            raise StepError(step, msg)
        ref = _task_ref(step, payload.get("task"), task)
        sources_data = payload.get("sources")
        if not isinstance(sources_data, dict):
            raise StepError(step, f"the payload's sources must be an object of buckets, got {type(sources_data).__name__}")
        sources = {str(param): _bucket(step, data) for param, data in sources_data.items()}
        target = _bucket(step, payload.get("target"))
        try:
            func = load_task(ref)
        except Exception as exc:
            where = ref.file or ref.module
            msg = f"could not load task {ref.qualname!r} from {where} ({type(exc).__name__}: {exc})"
            err = StepError(step, msg, hint="the task's module must import cleanly where the step runs (same code, same dependencies)")
            err.traceback = traceback.format_exc()  # type: ignore[attr-defined]
            raise err from exc
        outcome = execute_step(step, func, sources, target)
    except StepError as err:
        data = err.to_dict()
        data["traceback"] = getattr(err, "traceback", None) or traceback.format_exc()
        return {"ok": False, "error": data}
    except Exception as exc:
        data = {"type": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        return {"ok": False, "error": data}
    return {"ok": True, **outcome.to_dict()}


def handle_deployed(payload: dict[str, Any]) -> dict[str, Any]:
    """What a deployed function's handler calls: :func:`handle`, held to the function's one task.

    The task is read from the ``GLACIER_TASK`` environment variable, which the generated
    infrastructure sets on each function. Without it, every payload is refused. Before
    the step, the function's credentials for other clouds are set up
    (:func:`glacier.plugins.identity.configure_credentials`: once per process, then its tokens
    are kept fresh); a failure there is the step's error. Never raises.
    """
    pinned = os.environ.get(TASK_ENV, "").strip()
    if not pinned:
        step = _step_name(payload)
        msg = f"this function has no {TASK_ENV} environment variable, so it does not know which task it may run; it runs none"
        hint = f"deploy it from the Terraform that `generate` wrote, which sets {TASK_ENV}=module:qualname on each function"
        return {"ok": False, "error": {**StepError(step, msg, hint=hint).to_dict(), "traceback": None}}
    failure = _configure_credentials(_step_name(payload))
    if failure is not None:
        return failure
    return handle(payload, task=pinned)


def _configure_credentials(step: str) -> dict[str, Any] | None:
    """Set up the function's credentials for other clouds (:func:`glacier.plugins.identity.configure_credentials`); the step's error if that fails."""
    from glacier.errors import IdentityError
    from glacier.plugins.identity import configure_credentials

    try:
        configure_credentials()
    except IdentityError as exc:
        err = StepError(step, f"could not set up this function's credentials for another cloud: {exc.what}", hint=exc.hint)
    except Exception as exc:
        msg = f"could not set up this function's credentials for another cloud ({type(exc).__name__}: {exc})"
        hint = "check the identity settings the generated Terraform gave the function (AWS_ROLE_ARN, AZURE_CLIENT_ID, GLACIER_GCP_CREDENTIAL_CONFIG, its secret's ARN) and that its identity may use them"
        err = StepError(step, msg, hint=hint)
    else:
        return None
    return {"ok": False, "error": {**err.to_dict(), "traceback": traceback.format_exc()}}


def _step_name(payload: Any) -> str:
    return str(payload.get("step", "?")) if isinstance(payload, dict) else "?"


def _task_ref(step: str, data: Any, pinned: str | None) -> TaskRef:
    """The payload's task reference, checked (and, where a task is pinned, held to it)."""
    from glacier.task import TaskRef

    if not isinstance(data, dict) or not isinstance(data.get("module"), str) or not isinstance(data.get("qualname"), str):
        raise StepError(step, "the payload's task must be an object with a module and a qualname (strings)")
    file = data.get("file")
    if file is not None and not isinstance(file, str):
        raise StepError(step, f"the payload's task file must be a string or null, got {type(file).__name__}")
    ref = TaskRef(data["module"], data["qualname"], file)
    if pinned is None:
        return ref
    hint = "invoke the function deployed for that task (the deployment manifest names it); run generate and apply again if the pipeline changed"
    if ref.file is not None:
        msg = f"this function runs only task {pinned!r} ({TASK_ENV}) and never loads a file, but the payload names the file {ref.file!r}; refused"
        raise StepError(step, msg, hint=hint)
    asked = f"{ref.module}:{ref.qualname}"
    if asked != pinned:
        msg = f"this function runs only task {pinned!r} ({TASK_ENV}), but the payload asks for {asked!r}; refused"
        raise StepError(step, msg, hint=hint)
    return ref


def _bucket(step: str, data: Any) -> Bucket:
    """A bucket rebuilt from the payload; a config type no installed plugin contributes is refused."""
    from glacier.bucket import Bucket
    from glacier.errors import PluginNotInstalledError

    if not isinstance(data, dict) or not isinstance(data.get("uri"), str):
        raise StepError(step, "each bucket of the payload must be an object with a uri (a string)")
    try:
        return Bucket.from_dict(data)
    except (PluginNotInstalledError, TypeError) as exc:
        what, _, hint = str(exc).partition("\n\nHint: ")
        raise StepError(step, what, uri=data["uri"], hint=hint or None) from None


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
        # The module's own top level must not run its pipeline here (see glacier._guard).
        with importing_task_module(f"module {name!r}"):
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
            with importing_task_module(file):
                spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[alias]
            raise
        return module
