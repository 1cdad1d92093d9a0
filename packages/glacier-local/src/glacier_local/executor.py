"""The worker executor: each step in a fresh process, through the JSON protocol.

It exercises, on one machine, exactly the path a serverless step takes: the payload is
serialized, the task is imported by reference in another interpreter, the result and
errors come back as JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from glacier.plugins.executor import Executor
from glacier.run.process import run_in_worker, run_payload

if TYPE_CHECKING:
    from glacier.dag import TaskInstance
    from glacier.plugins.payload import StepOutcome

    from glacier_local.config import ProcessConfig

__all__ = ["ProcessExecutor"]


class ProcessExecutor(Executor):
    """Runs each step in ``python -m glacier.run.worker`` (``provider.serverless()`` of a local provider)."""

    kind: ClassVar[str] = "process"
    runs_here: ClassVar[bool] = True
    config: ProcessConfig

    def run(self, instance: TaskInstance, run_id: str, attempt: int = 1, **context: Any) -> StepOutcome:
        """Run the step in a worker process, within the task's (or this executor's) timeout."""
        timeout = instance.task.timeout if instance.task.timeout is not None else self.config.timeout
        return run_in_worker(instance, run_id, attempt, timeout=timeout)

    def invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Run one payload in a worker process and return its result dict."""
        return run_payload(payload, timeout=self.config.timeout, step=str(payload.get("step")))
