"""The executor protocol: one JSON payload in, one JSON result out.

Every executor that runs a step somewhere else (a worker process, AWS Lambda, Cloud
Functions, Azure Functions) sends the same payload and gets the same result back.
This is the one description of its shape::

    payload = {
        "protocol": 1,
        "run_id": "20260101T000000-1a2b3c",
        "step": "double",
        "attempt": 1,
        "task": {"module": "pipelines.etl", "qualname": "double", "file": "/abs/pipelines/etl.py"},
        "sources": {"df": {"uri": "s3://lake/raw.parquet", "config": {...}}},
        "target": {"uri": "s3://lake/out.parquet", "config": {...}},
        "function": "etl-double",
    }
    result = {"ok": True, "rows": 10, "bytes": 2048, "seconds": 0.4, "fingerprint": "ETag=...;size=2048"}
    result = {"ok": False, "error": {"type": "SourceNotFoundError", "step": ..., "uri": ..., ...}}

The payload's keys:

``protocol``
    :data:`PROTOCOL_VERSION`; the receiving side refuses another.
``run_id``, ``step``, ``attempt``
    Which run, which step (a task's name, or ``task#2`` when a task runs more than
    once) and which attempt (from 1) this is; logged where the step runs.
``task``
    The task as ``module``, ``qualname`` and ``file`` (the file a worker on this
    machine may load it from). A remote executor sends the module and qualname of its
    :class:`~glacier.plugins.deployment.DeploymentEntry` and ``"file": None``: a
    deployed function imports its one task by name.
``sources``
    One bucket per parameter of the task: its ``uri`` and its ``config`` (from
    :func:`~glacier.plugins.serialization.config_to_dict`).
``target``
    The bucket the step writes, in the same form.
``function``
    Only from a :class:`~glacier.plugins.remote.RemoteExecutor`: the name of the
    deployed function it is sent to (the entry's ``function_name``).

The result is ``ok`` with the target's ``rows``, ``bytes``, the step's ``seconds``
and the target's ``fingerprint`` (see :class:`StepOutcome`), or not ``ok`` with the
step's ``error`` as :meth:`glacier.errors.StepError.to_dict` gives it (plus its
``traceback``). Configs carry names and endpoints, never secrets: each side uses its
own credentials.

What a payload may ask for, and what the side that runs the step does with it, is
:mod:`glacier.run.protocol`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from glacier.errors import StepError, error_from_dict

if TYPE_CHECKING:
    from glacier.dag import TaskInstance

__all__ = ["PROTOCOL_VERSION", "StepOutcome", "build_payload", "outcome_from_result"]


@dataclass(frozen=True)
class StepOutcome:
    """What a successful step wrote: rows, bytes, how long it took, and the target's fingerprint."""

    rows: int
    bytes: int
    seconds: float
    fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready data."""
        return asdict(self)


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


def outcome_from_result(result: dict[str, Any], step: str) -> StepOutcome:
    """Turn a result dict into a :class:`~glacier.plugins.payload.StepOutcome`, or raise its error."""
    from glacier.plugins.payload import StepOutcome

    if result.get("ok"):
        return StepOutcome(
            rows=int(result["rows"]), bytes=int(result["bytes"]), seconds=float(result["seconds"]), fingerprint=result.get("fingerprint")
        )
    raise error_from_dict(result.get("error") or {}, step)
