"""What a run returns: every step's status, rows, bytes, seconds and error."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from glacier.errors import StepError

__all__ = ["StepStatus", "StepResult", "RunResult"]


class StepStatus(str, Enum):
    """The status of a step in a run.

    ``succeeded``: ran and wrote its target. ``cached``: skipped because its inputs
    and code were unchanged (``cache=True``). ``reused``: succeeded in the run being
    resumed, so not run again. ``failed``: every attempt failed. ``timed_out``: the
    last attempt ran past ``timeout``. ``skipped``: not run because an upstream step
    failed. ``cancelled``: not run because the run stopped early (``fail_fast``, or
    Ctrl-C before it started). ``interrupted``: stopped by Ctrl-C while it ran; its
    target was left as it was.
    """

    SUCCEEDED = "succeeded"
    CACHED = "cached"
    REUSED = "reused"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def ok(self) -> bool:
        """Whether the step's target holds its up-to-date result."""
        return self in (StepStatus.SUCCEEDED, StepStatus.CACHED, StepStatus.REUSED)

    def __str__(self) -> str:
        return self.value


@dataclass
class StepResult:
    """The outcome of one step in a run."""

    name: str
    status: StepStatus
    target: str
    executor: str = "local"
    attempts: int = 0
    rows: int | None = None
    bytes: int | None = None
    seconds: float = 0.0
    error: BaseException | None = None
    input_fingerprints: dict[str, str] = field(default_factory=dict)
    output_fingerprint: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the step's target holds its up-to-date result."""
        return self.status.ok

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (for run records)."""
        error: dict[str, Any] | None = None
        if self.error is not None:
            error = self.error.to_dict() if isinstance(self.error, StepError) else {"type": type(self.error).__name__, "message": str(self.error)}
        return {
            "name": self.name,
            "status": self.status.value,
            "target": self.target,
            "executor": self.executor,
            "attempts": self.attempts,
            "rows": self.rows,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "error": error,
            "input_fingerprints": self.input_fingerprints,
            "output_fingerprint": self.output_fingerprint,
            "note": self.note,
        }


@dataclass
class RunResult:
    """The outcome of a pipeline run.

    Index it by step name (``result["double"].rows``); ``ok`` is true when every
    step's target is up to date.
    """

    run_id: str
    pipeline: str
    mode: str
    started: float
    finished: float
    steps: dict[str, StepResult]
    note: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every step succeeded (or was cached or reused)."""
        return all(step.ok for step in self.steps.values())

    @property
    def failed(self) -> list[StepResult]:
        """The steps that failed or timed out."""
        return [s for s in self.steps.values() if s.status in (StepStatus.FAILED, StepStatus.TIMED_OUT)]

    @property
    def seconds(self) -> float:
        """Wall time of the run."""
        return self.finished - self.started

    def raise_for_failures(self) -> RunResult:
        """Raise the first failed step's error, if any step failed; return self otherwise."""
        for step in self.failed:
            if step.error is not None:
                raise step.error
        return self

    def __getitem__(self, name: str) -> StepResult:
        return self.steps[name]

    def summary(self) -> str:
        """A plain-text table of the steps (the CLI shows a rich one)."""
        rows = [("step", "status", "attempts", "rows", "bytes", "seconds")]
        for s in self.steps.values():
            rows.append((s.name, s.status.value, str(s.attempts), _num(s.rows), _num(s.bytes), f"{s.seconds:.2f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        verdict = "succeeded" if self.ok else f"FAILED ({len(self.failed)} step(s))"
        lines.append(f"run {self.run_id} of {self.pipeline!r} {verdict} in {self.seconds:.2f}s")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data (the run record)."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "mode": self.mode,
            "started": self.started,
            "finished": self.finished,
            "ok": self.ok,
            "note": self.note,
            "steps": [s.to_dict() for s in self.steps.values()],
        }

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for s in self.steps.values():
            counts[s.status.value] = counts.get(s.status.value, 0) + 1
        return f"RunResult(pipeline={self.pipeline!r}, ok={self.ok}, steps={counts})"


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
