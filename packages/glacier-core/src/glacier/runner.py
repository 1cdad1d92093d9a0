"""The runner behind ``mode="local"`` and ``mode="cloud"``.

It walks the DAG and starts each step as soon as every step it reads from has
finished, so independent steps (a wave of the graph) run at the same time. Each step
gets its attempts (``retries``), its time limit (``timeout``), and lifecycle events
that plugins (the CLI's progress display, a lineage exporter) subscribe to.

``mode="local"`` runs every step on this machine: in this process, or in a worker
process when the task has a ``timeout`` (so it can be stopped) or its executor is a
local worker executor. ``mode="cloud"`` sends each step to its executor.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from glacier.errors import StepError, StepTimeoutError
from glacier.result import RunResult, StepResult, StepStatus

if TYPE_CHECKING:
    from glacier.dag import DAG, TaskInstance
    from glacier.pipeline import Pipeline
    from glacier.step import StepOutcome

__all__ = ["RunContext", "Runner", "new_run_id"]


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex (``20261125T174512-3f9a1c``)."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class RunContext:
    """What lifecycle hooks are told about the run in progress."""

    run_id: str
    pipeline: str
    mode: str
    steps: list[TaskInstance]
    started: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Runs a pipeline's DAG; made by :meth:`Pipeline.run`.

    Parameters
    ----------
    pipeline, dag : what to run.
    mode : ``"local"`` or ``"cloud"``.
    max_workers : how many steps may run at once (default: the CPU count, at least 2).
    fail_fast : stop starting steps after the first failure.
    raise_on_failure : raise the first failed step's error instead of returning.
    retry_backoff : base seconds of the exponential backoff between attempts.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        dag: DAG,
        *,
        mode: str = "local",
        max_workers: int | None = None,
        fail_fast: bool = False,
        raise_on_failure: bool = False,
        retry_backoff: float | None = None,
        **options: Any,
    ) -> None:
        if options:
            msg = f"Unknown run option(s): {', '.join(sorted(options))}"
            raise TypeError(msg)
        self.pipeline = pipeline
        self.dag = dag
        self.mode = mode
        self.max_workers = max_workers or max(2, os.cpu_count() or 2)
        self.fail_fast = fail_fast
        self.raise_on_failure = raise_on_failure
        self.retry_backoff = retry_backoff if retry_backoff is not None else float(pipeline.config.get("retry_backoff", 0.5))
        self._stop = threading.Event()

    # -- the run ---------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run the steps and return the result (or raise, with ``raise_on_failure``)."""
        from glacier.plugins import get_plugin_manager

        hook = get_plugin_manager().hook
        order = self.dag.topological_sort()
        ctx = RunContext(run_id=new_run_id(), pipeline=self.pipeline.name, mode=self.mode, steps=order)
        self.ctx = ctx
        hook.glacier_run_started(run=ctx)
        results = self._schedule(order, hook)
        result = RunResult(
            run_id=ctx.run_id,
            pipeline=self.pipeline.name,
            mode=self.mode,
            started=ctx.started,
            finished=time.time(),
            steps={inst.name: results[inst.name] for inst in order},
        )
        hook.glacier_run_finished(run=ctx, result=result)
        if self.raise_on_failure:
            result.raise_for_failures()
        return result

    def _schedule(self, order: list[TaskInstance], hook: Any) -> dict[str, StepResult]:
        results: dict[str, StepResult] = {}
        waiting = {id(inst): len(inst.dependencies) for inst in order}
        blocked: dict[int, str] = {}  # step -> the failed upstream step that blocks it
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="glacier-step") as pool:
            running: dict[Future[StepResult], TaskInstance] = {}

            def start(inst: TaskInstance) -> None:
                running[pool.submit(self._run_step, inst, hook)] = inst

            for inst in order:
                if waiting[id(inst)] == 0:
                    start(inst)
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    inst = running.pop(future)
                    step_result = results[inst.name] = future.result()
                    if not step_result.ok:
                        if self.fail_fast:
                            self._stop.set()
                        for below in self.dag.downstream([inst])[1:]:
                            blocked.setdefault(id(below), inst.name)
                    for nxt in inst.dependents:
                        waiting[id(nxt)] -= 1
                        if waiting[id(nxt)] == 0 and id(nxt) not in blocked and not self._stop.is_set():
                            start(nxt)
        for inst in order:
            if inst.name not in results:
                if id(inst) in blocked:
                    status, note = StepStatus.SKIPPED, f"upstream step {blocked[id(inst)]!r} failed"
                else:
                    status, note = StepStatus.CANCELLED, "the run stopped at the first failure (fail_fast)"
                results[inst.name] = skipped = self._result(inst, status, note=note)
                hook.glacier_step_finished(run=self.ctx, step=inst, result=skipped)
        return results

    # -- one step ----------------------------------------------------------------------

    def _run_step(self, inst: TaskInstance, hook: Any) -> StepResult:
        task = inst.task
        attempts = task.retries + 1
        error: BaseException | None = None
        started = time.perf_counter()
        for attempt in range(1, attempts + 1):
            hook.glacier_step_started(run=self.ctx, step=inst, attempt=attempt)
            try:
                outcome = self._execute(inst, attempt)
            except Exception as exc:
                if not isinstance(exc, StepError):
                    wrapped = StepError(inst.name, f"{type(exc).__name__}: {exc}")
                    wrapped.__cause__ = exc
                    exc = wrapped
                error = exc
                will_retry = attempt < attempts and not self._stop.is_set()
                hook.glacier_step_failed(run=self.ctx, step=inst, error=exc, attempt=attempt, will_retry=will_retry)
                if not will_retry:
                    break
                self._stop.wait(self._backoff(attempt))
                continue
            result = self._result(
                inst, StepStatus.SUCCEEDED, attempts=attempt, rows=outcome.rows, bytes=outcome.bytes, seconds=time.perf_counter() - started
            )
            hook.glacier_step_finished(run=self.ctx, step=inst, result=result)
            return result
        assert error is not None
        tried = attempt
        if tried > 1 and isinstance(error, StepError):
            error = _with_attempts(error, tried)
        status = StepStatus.TIMED_OUT if isinstance(error, StepTimeoutError) else StepStatus.FAILED
        result = self._result(inst, status, attempts=tried, seconds=time.perf_counter() - started, error=error)
        hook.glacier_step_finished(run=self.ctx, step=inst, result=result)
        return result

    def _execute(self, inst: TaskInstance, attempt: int) -> StepOutcome:
        executor = inst.task.executor
        if self.mode == "cloud" or executor.runs_here:
            if inst.task.timeout is not None and executor.kind == "local":
                return _run_in_worker(inst, self.ctx.run_id, attempt)
            return executor.run(inst, self.ctx.run_id, attempt)
        # mode="local" with a remote executor: run the same step code on this machine.
        if inst.task.timeout is not None:
            return _run_in_worker(inst, self.ctx.run_id, attempt)
        from glacier.step import execute_step

        return execute_step(inst.name, inst.task.func, inst.sources, inst.target)

    def _backoff(self, attempt: int) -> float:
        # Exponential backoff with full jitter: spreads retries of concurrent steps.
        return float(random.uniform(0, self.retry_backoff * 2 ** (attempt - 1)))

    def _result(self, inst: TaskInstance, status: StepStatus, **fields: Any) -> StepResult:
        return StepResult(name=inst.name, status=status, target=inst.target.uri, executor=inst.task.executor.kind, **fields)


def _run_in_worker(inst: TaskInstance, run_id: str, attempt: int) -> StepOutcome:
    from glacier.process import run_payload
    from glacier.protocol import build_payload, outcome_from_result

    result = run_payload(build_payload(inst, run_id, attempt), timeout=inst.task.timeout, step=inst.name)
    return outcome_from_result(result, inst.name)


def _with_attempts(error: StepError, attempts: int) -> StepError:
    rebuilt = type(error)(error.step, f"{error.what} (after {attempts} attempts)", uri=error.uri, hint=error.hint)
    rebuilt.__cause__ = error.__cause__
    if hasattr(error, "traceback"):
        rebuilt.traceback = error.traceback  # type: ignore[attr-defined]
    return rebuilt
