"""A step never starts a run: the guard that :meth:`glacier.Pipeline.run` asks first.

A step that runs somewhere else (a worker process, a Lambda function, any handler)
imports its task's module there. Scripts written the way the seed writes its examples
call ``pipeline.run()`` at module level, so without this guard that import would run the
pipeline again, whose steps would start workers of their own, and so on until the machine
(or the cloud bill) gives out. Two rules:

- **While a task's module is imported to run a step** (:func:`importing_task_module`,
  entered by :func:`glacier.run.protocol.load_task`), a run is skipped: one line on standard
  error names the pipeline and the module, and ``run()`` returns a :class:`SkippedRun`
  (``local``/``cloud``) or ``None`` (``analyze``/``generate``), so the rest of the script
  still imports.
- **A process that executes steps** (``GLACIER_STEP_PROCESS=1``: every worker process,
  every deployed function) starts no run at all, say from inside a task's body: the run
  raises :class:`~glacier.errors.GlacierError`. The variable is inherited, so a program a
  task starts is held to the same rule.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from glacier.errors import GlacierError
from glacier.result import RunResult, StepResult, StepStatus

if TYPE_CHECKING:
    from glacier.pipeline import Pipeline

#: Set to ``"1"`` in a process that executes steps: such a process starts no pipeline run.
STEP_PROCESS_ENV = "GLACIER_STEP_PROCESS"

# A context variable, not a process global: only code running inside the import (the
# module's own top level, in the importing thread) is affected, never a run that another
# thread of the same process starts meanwhile.
_importing: ContextVar[str | None] = ContextVar("glacier_importing_task_module", default=None)


@contextmanager
def importing_task_module(what: str) -> Iterator[None]:
    """Mark the code run inside this block as the import of a task's module (``what`` names it)."""
    token = _importing.set(what)
    try:
        yield
    finally:
        _importing.reset(token)


def mark_step_process() -> None:
    """Declare that this process, and every process it starts, executes steps.

    Sets ``GLACIER_STEP_PROCESS=1``: from then on ``Pipeline.run()`` raises here, except
    while a task's module is being imported, where a run is skipped with a notice. A
    worker process and every deployed function's handler call it; a provider's handler
    should call it when it knows it runs inside its platform (not in a test process).
    """
    os.environ[STEP_PROCESS_ENV] = "1"


def is_step_process() -> bool:
    """Whether this process executes steps (see :func:`mark_step_process`)."""
    return os.environ.get(STEP_PROCESS_ENV, "") not in ("", "0")


@dataclass
class SkippedRun(RunResult):
    """What ``run()`` returns when it was skipped because a task's module was being imported.

    Every step is ``skipped`` and :attr:`note` says why. Nothing failed, so :attr:`ok` is
    true and :meth:`raise_for_failures` raises nothing: a script that checks its result at
    module level still imports.
    """

    @property
    def ok(self) -> bool:
        """Always true: the run was not started, so nothing failed."""
        return True

    def summary(self) -> str:
        """One line: which run was skipped and why."""
        return f"run of {self.pipeline!r} skipped: {self.note}"


def check_run(pipeline: str) -> str | None:
    """Whether ``pipeline`` may run here: ``None`` if so; if it is skipped, what is being imported.

    A skipped run prints one line to standard error, naming the pipeline and the module.

    Raises
    ------
    GlacierError
        In a process that executes steps, outside the import of a task's module.
    """
    what = _importing.get()
    if what is not None:
        print(f"glacier: not running pipeline {pipeline!r} while {what} is imported to run a step", file=sys.stderr, flush=True)
        return what
    if is_step_process():
        msg = (
            f"Pipeline {pipeline!r} cannot run in a process that executes a step ({STEP_PROCESS_ENV} is set): "
            "a step never starts a run, or each worker would start workers of its own.\n\n"
            "Hint: start runs from a script or the `glacier` CLI, not from inside a task; to run several "
            "pipelines together, compose them with Pipeline.compose(...)"
        )
        raise GlacierError(msg)
    return None


def skipped_run(pipeline: Pipeline, mode: str, importing: str) -> SkippedRun:
    """The :class:`SkippedRun` that ``pipeline.run(mode=mode)`` returns while ``importing`` is imported."""
    now = time.time()
    reason = f"{importing} is being imported here to run a step, and a step never starts a run"
    steps = {
        inst.name: StepResult(name=inst.name, status=StepStatus.SKIPPED, target=inst.target.uri, executor=inst.task.executor.kind, note=reason)
        for inst in pipeline.build().topological_sort()
    }
    return SkippedRun(run_id="skipped", pipeline=pipeline.name, mode=mode, started=now, finished=now, steps=steps, note=reason)
