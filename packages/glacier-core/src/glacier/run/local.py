"""The in-process executor (``provider.local()``) and :func:`run_here`: a step on this machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glacier.plugins.executor import Executor

if TYPE_CHECKING:
    from glacier.dag import TaskInstance
    from glacier.plugins.payload import StepOutcome

__all__ = ["InProcessExecutor", "run_here"]


class InProcessExecutor(Executor):
    """Runs tasks in this Python process (``provider.local()``)."""

    kind = "local"

    def run(self, instance: TaskInstance, run_id: str, attempt: int = 1, **context: Any) -> StepOutcome:
        """Run the step in this process (in a worker process when it has a ``timeout``)."""
        return run_here(instance, run_id, attempt)

    def invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Handle a payload in this process (the same code a worker runs)."""
        from glacier.run.protocol import handle

        return handle(payload)


def run_here(instance: TaskInstance, run_id: str, attempt: int = 1) -> StepOutcome:
    """Run a step on this machine, whatever executor it is bound to.

    In this process, or in a worker process when the task has a ``timeout``: a thread
    cannot be stopped, a process can. ``mode="local"`` runs every step this way.
    """
    if instance.task.timeout is not None:
        from glacier.run.process import run_in_worker

        return run_in_worker(instance, run_id, attempt, timeout=instance.task.timeout)
    from glacier.run.step import execute_step

    return execute_step(instance.name, instance.task.func, instance.sources, instance.target)
