"""The runner behind ``mode="local"`` and ``mode="cloud"``.

It walks the DAG and starts each step as soon as every step it reads from has
finished, so independent steps (a wave of the graph) run at the same time. Each step
gets its attempts (``retries``), its time limit (``timeout``), and lifecycle events
that plugins (the CLI's progress display, a lineage exporter) subscribe to.

``mode="local"`` runs every step on this machine: in this process, or in a worker
process when the task has a ``timeout`` (so it can be stopped) or its executor is a
local worker executor. ``mode="cloud"`` sends each step to its executor.

Ctrl-C (``KeyboardInterrupt``) stops a run: no step starts any more, the worker
processes in flight are killed before they commit, and the run is recorded as
``interrupted`` before :class:`~glacier.errors.RunInterrupted` is raised. A step running
in one of this process's threads cannot be stopped; the runner waits
:data:`INTERRUPT_GRACE` seconds for it and then leaves it behind.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from glacier.errors import RunInterrupted, StepError, StepTimeoutError
from glacier.plugins.context import RunContext
from glacier.result import RunResult, StepResult, StepStatus
from glacier.run.process import WorkerGroup, worker_group

if TYPE_CHECKING:
    from glacier.dag import DAG, TaskInstance
    from glacier.pipeline import Pipeline
    from glacier.plugins.deployment import Deployment
    from glacier.plugins.payload import StepOutcome

__all__ = ['INTERRUPT_GRACE', 'Runner', 'new_run_id']

#: Seconds an interrupted run waits for its steps in flight to end before it gives up on them.
INTERRUPT_GRACE = 1.0


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex (``20261125T174512-3f9a1c``)."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class Runner:
    """Runs a pipeline's DAG; made by :meth:`Pipeline.run`.

    Parameters
    ----------
    pipeline, dag
        What to run.
    mode
        ``"local"`` or ``"cloud"``.
    max_workers
        How many steps may run at once (default: the CPU count, at least 2).
    fail_fast
        Stop starting steps after the first failure.
    raise_on_failure
        Raise the first failed step's error instead of returning.
    retry_backoff
        Base seconds of the exponential backoff between attempts.
    resume
        Re-run only the steps of the pipeline's last run that failed or never
        ran, and what is downstream of them.
    state_dir
        Where run records go (see :mod:`glacier.run.history`).
    manifest
        Cloud mode: the deployment manifest (default: the one ``generate``
        recorded for this pipeline in the state directory).
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
        resume: bool = False,
        state_dir: str | None = None,
        manifest: str | None = None,
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
        self.resume = resume
        self.manifest = manifest
        self.state_dir = state_dir or pipeline.config.get("state_dir")
        self.deployment: Deployment | None = None
        from glacier.run.history import RunStore

        self.store = RunStore(state_dir or pipeline.config.get("state_dir"))
        self._stop = threading.Event()
        self._interrupted = threading.Event()
        self._workers = WorkerGroup()
        self._abandoned: set[str] = set()  # steps an interrupted run stopped waiting for
        self._in_flight: list[TaskInstance] = []
        self._record_lock = threading.Lock()
        self._results: dict[str, StepResult] = {}
        self._last_write = 0.0

    # -- the run ---------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run the steps and return the result (or raise, with ``raise_on_failure``).

        Raises
        ------
        RunInterrupted
            On Ctrl-C, once the run is stopped and recorded as ``interrupted``.
        """
        from glacier.plugins.registry import get_plugin_manager

        hook = get_plugin_manager().hook
        order = self.dag.topological_sort()
        if self.mode == "cloud" and any(inst.task.executor.needs_deployment for inst in order):
            from glacier.infra.manifest import load_deployment

            self.deployment = load_deployment(self.pipeline.name, self.manifest, self.state_dir)  # fail before starting
        ctx = RunContext(run_id=new_run_id(), pipeline=self.pipeline.name, mode=self.mode, steps=order)
        self.ctx = ctx
        reused, note = self._plan_resume(order) if self.resume else ({}, None)
        self._write_record("running", force=True)
        try:
            hook.glacier_run_started(run=ctx)
            results = self._schedule(order, hook, reused)
        except KeyboardInterrupt:
            raise self._record_interrupt(order, hook, note) from None
        result = RunResult(
            run_id=ctx.run_id,
            pipeline=self.pipeline.name,
            mode=self.mode,
            started=ctx.started,
            finished=time.time(),
            steps={inst.name: results[inst.name] for inst in order},
            note=note,
        )
        self._write_record("finished", force=True, result=result)
        hook.glacier_run_finished(run=ctx, result=result)
        if self.raise_on_failure:
            result.raise_for_failures()
        return result

    def _record_interrupt(self, order: list[TaskInstance], hook: Any, note: str | None) -> RunInterrupted:
        """Give every step a result, record the run as interrupted, and say what happened."""
        self._stop_everything()
        for inst in order:
            if inst.name not in self._results:
                self._results[inst.name] = self._result(inst, StepStatus.CANCELLED, note="the run was interrupted before the step started")
        result = RunResult(
            run_id=self.ctx.run_id,
            pipeline=self.pipeline.name,
            mode=self.mode,
            started=self.ctx.started,
            finished=time.time(),
            steps={inst.name: self._results[inst.name] for inst in order},
            note=note,
        )
        self._write_record("interrupted", force=True, result=result)
        in_flight = [inst.name for inst in self._in_flight]
        remote = [inst.name for inst in self._in_flight if self.mode == "cloud" and not inst.task.executor.runs_here]
        still = [inst.name for inst in self._in_flight if inst.name in self._abandoned and inst.name not in remote]
        try:
            hook.glacier_run_finished(run=self.ctx, result=result)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: the record is written, go
        return RunInterrupted(self.ctx.run_id, self.pipeline.name, in_flight=in_flight, still_running=still, remote=remote, result=result)

    def _stop_everything(self) -> None:
        self._interrupted.set()
        self._stop.set()
        self._workers.stop()

    def _plan_resume(self, order: list[TaskInstance]) -> tuple[dict[str, StepResult], str | None]:
        """Which steps the last run already did (their targets are materialized)."""
        last = self.store.last(self.pipeline.name)
        if last is None:
            return {}, f"Nothing to resume: {self.pipeline.name!r} has no earlier run in {self.store.root}; running everything."
        before = {step["name"]: step for step in last.get("steps", [])}
        done = {
            id(inst)
            for inst in order
            if inst.name in before
            and before[inst.name]["status"] in (StepStatus.SUCCEEDED, StepStatus.CACHED, StepStatus.REUSED)
            and before[inst.name].get("target") == inst.target.uri
            and inst.target.exists()
        }
        again = self.dag.downstream([inst for inst in order if id(inst) not in done])
        rerun = {id(inst) for inst in again}
        reused = {}
        for inst in order:
            if id(inst) not in rerun:
                old = before[inst.name]
                reused[inst.name] = self._result(
                    inst, StepStatus.REUSED, rows=old.get("rows"), bytes=old.get("bytes"), output_fingerprint=old.get("output_fingerprint"),
                    note=f"done in run {last['run_id']}",
                )
        if not again:
            return reused, f"Nothing to resume: the last run {last['run_id']} of {self.pipeline.name!r} finished every step."
        return reused, f"Resuming run {last['run_id']}: running {', '.join(i.name for i in again)}."

    def _schedule(self, order: list[TaskInstance], hook: Any, reused: dict[str, StepResult]) -> dict[str, StepResult]:
        results = self._results
        waiting = {id(inst): len(inst.dependencies) for inst in order}
        blocked: dict[int, str] = {}  # step -> the failed upstream step that blocks it
        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="glacier-step")
        running: dict[Future[StepResult], TaskInstance] = {}

        def start(inst: TaskInstance) -> None:
            relay = _HookRelay(hook, lambda: inst.name in self._abandoned)
            running[pool.submit(self._run_step, inst, relay)] = inst

        def finished(inst: TaskInstance, step_result: StepResult) -> None:
            with self._record_lock:
                results[inst.name] = step_result
            self._write_record("running", force=not step_result.ok)
            if not step_result.ok:
                if self.fail_fast:
                    self._stop.set()
                for below in self.dag.downstream([inst])[1:]:
                    blocked.setdefault(id(below), inst.name)
            for nxt in inst.dependents:
                waiting[id(nxt)] -= 1
                if waiting[id(nxt)] == 0 and id(nxt) not in blocked and not self._stop.is_set():
                    ready.append(nxt)

        ready = deque(inst for inst in order if waiting[id(inst)] == 0)
        try:
            while ready or running:
                while ready:
                    inst = ready.popleft()
                    if inst.name in reused:
                        hook.glacier_step_finished(run=self.ctx, step=inst, result=reused[inst.name])
                        finished(inst, reused[inst.name])
                    else:
                        start(inst)
                if not running:
                    break
                # A timeout keeps this thread coming back to Python, where Ctrl-C is raised.
                done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    inst = running.pop(future)
                    finished(inst, future.result())
        except KeyboardInterrupt:
            self._stop_in_flight(running, hook)
            pool.shutdown(wait=False, cancel_futures=True)  # threads still running are left behind
            raise
        pool.shutdown(wait=True)
        for inst in order:
            if inst.name not in results:
                if id(inst) in blocked:
                    status, note = StepStatus.SKIPPED, f"upstream step {blocked[id(inst)]!r} failed"
                else:
                    status, note = StepStatus.CANCELLED, "the run stopped at the first failure (fail_fast)"
                results[inst.name] = skipped = self._result(inst, status, note=note)
                hook.glacier_step_finished(run=self.ctx, step=inst, result=skipped)
        return results

    def _stop_in_flight(self, running: dict[Future[StepResult], TaskInstance], hook: Any) -> None:
        """Ctrl-C: kill the workers in flight, wait briefly for the rest, give up on them."""
        self._stop_everything()
        self._in_flight = list(running.values())
        try:
            done, _ = wait(running, timeout=INTERRUPT_GRACE)
        except KeyboardInterrupt:  # a second Ctrl-C: wait no longer
            done = {future for future in running if future.done()}
        for future, inst in running.items():
            outcome = future.result() if future in done and future.exception() is None else None
            if outcome is None:
                self._abandoned.add(inst.name)
                where = "remotely" if self.mode == "cloud" and not inst.task.executor.runs_here else "in this process"
                outcome = self._result(inst, StepStatus.INTERRUPTED, note=f"interrupted while it ran {where}; it could not be stopped")
                hook.glacier_step_finished(run=self.ctx, step=inst, result=outcome)
            with self._record_lock:
                self._results[inst.name] = outcome

    # -- one step ----------------------------------------------------------------------

    def _run_step(self, inst: TaskInstance, hook: Any) -> StepResult:
        task = inst.task
        started = time.perf_counter()
        inputs = self._input_fingerprints(inst)
        key = None
        if task.cache and inputs is not None:
            from glacier.run.cache import cache_key, read_record

            key = cache_key(inst, inputs)  # None (with a warning) when the code cannot be fingerprinted
            cached = None if key is None else self._cache_hit(inst, key, read_record(inst.target))
            if cached is not None:
                cached.input_fingerprints = inputs
                hook.glacier_step_finished(run=self.ctx, step=inst, result=cached)
                return cached
        attempts = task.retries + 1
        error: BaseException | None = None
        attempt = 0
        tried = 0
        for attempt in range(1, attempts + 1):
            if self._interrupted.is_set():  # Ctrl-C before this attempt, or during the backoff
                break
            tried = attempt
            hook.glacier_step_started(run=self.ctx, step=inst, attempt=attempt)
            try:
                outcome = self._execute(inst, attempt)
            except Exception as exc:
                if self._interrupted.is_set():  # its worker was killed by Ctrl-C
                    break
                exc = _as_step_error(exc, inst.name)
                error = exc
                will_retry = attempt < attempts and not self._stop.is_set()
                hook.glacier_step_failed(run=self.ctx, step=inst, error=exc, attempt=attempt, will_retry=will_retry)
                if not will_retry:
                    break
                self._stop.wait(self._backoff(attempt))
                continue
            output = outcome.fingerprint or _fingerprint(inst.target)
            if key is not None and output is not None:
                from glacier.run.cache import write_record

                write_record(inst.target, {"key": key, "output": output, "rows": outcome.rows, "bytes": outcome.bytes, "run_id": self.ctx.run_id})
            result = self._result(
                inst, StepStatus.SUCCEEDED, attempts=attempt, rows=outcome.rows, bytes=outcome.bytes,
                seconds=time.perf_counter() - started, input_fingerprints=inputs or {}, output_fingerprint=output,
            )
            hook.glacier_step_finished(run=self.ctx, step=inst, result=result)
            return result
        if self._interrupted.is_set():
            stopped = self._result(
                inst, StepStatus.INTERRUPTED, attempts=tried, seconds=time.perf_counter() - started, input_fingerprints=inputs or {},
                note="stopped by Ctrl-C; the target was left as it was",
            )
            hook.glacier_step_finished(run=self.ctx, step=inst, result=stopped)
            return stopped
        assert error is not None
        if attempt > 1 and isinstance(error, StepError):
            error = _with_attempts(error, attempt)
        status = StepStatus.TIMED_OUT if isinstance(error, StepTimeoutError) else StepStatus.FAILED
        result = self._result(inst, status, attempts=attempt, seconds=time.perf_counter() - started, error=error, input_fingerprints=inputs or {})
        hook.glacier_step_finished(run=self.ctx, step=inst, result=result)
        return result

    def _input_fingerprints(self, inst: TaskInstance) -> dict[str, str] | None:
        """Each source's identity from storage metadata; ``None`` if one cannot be read."""
        found = {}
        for bucket in inst.sources.values():
            fingerprint = _fingerprint(bucket)
            if fingerprint is None:
                return None  # the step will fail on it and say why
            found[bucket.uri] = fingerprint
        return found

    def _cache_hit(self, inst: TaskInstance, key: str, record: dict[str, Any] | None) -> StepResult | None:
        if record is None or record.get("key") != key:
            return None
        current = _fingerprint(inst.target)
        if current is None or current != record.get("output"):
            return None  # the target was changed or removed since it was written
        return self._result(
            inst, StepStatus.CACHED, rows=record.get("rows"), bytes=record.get("bytes"), output_fingerprint=current,
            note=f"unchanged since run {record.get('run_id')}",
        )

    def _write_record(self, state: str, *, force: bool, result: RunResult | None = None) -> None:
        # At most about once a second while steps finish (a 10,000-step run must not
        # rewrite its record 10,000 times), always at start, on failure and at the end.
        # The record names this process, so a reader can tell when it is gone.
        from glacier.run.history import owner

        now = time.monotonic()
        if not force and now - self._last_write < 1.0:
            return
        with self._record_lock:
            self._last_write = now
            steps = [self._results[i.name].to_dict() for i in self.ctx.steps if i.name in self._results]
            record = {
                "run_id": self.ctx.run_id,
                "pipeline": self.pipeline.name,
                "mode": self.mode,
                "state": state,
                "started": self.ctx.started,
                "finished": result.finished if result else None,
                "ok": result.ok if result else None,
                "note": result.note if result else None,
                "steps": steps,
                "pending": [i.name for i in self.ctx.steps if i.name not in self._results],
                **owner(),
            }
            try:
                self.store.write(record, durable=state != "running")
            except OSError as exc:  # a run record is never worth failing the run over
                import warnings

                warnings.warn(f"could not write the run record under {self.store.root}: {exc}", stacklevel=2)

    def _execute(self, inst: TaskInstance, attempt: int) -> StepOutcome:
        executor = inst.task.executor
        with worker_group(self._workers):  # so that Ctrl-C can stop the step's worker
            if self.mode == "cloud" or executor.runs_here:
                return executor.run(inst, self.ctx.run_id, attempt, deployment=self.deployment)
            # mode="local" with a remote executor: the same step code, on this machine.
            from glacier.run.local import run_here

            return run_here(inst, self.ctx.run_id, attempt)

    def _backoff(self, attempt: int) -> float:
        # Exponential backoff with full jitter: spreads retries of concurrent steps.
        return float(random.uniform(0, self.retry_backoff * 2 ** (attempt - 1)))

    def _result(self, inst: TaskInstance, status: StepStatus, **fields: Any) -> StepResult:
        return StepResult(name=inst.name, status=status, target=inst.target.uri, executor=inst.task.executor.kind, **fields)


class _HookRelay:
    """The lifecycle hooks as one step's thread calls them: silent once the run gave up
    on the step (Ctrl-C), so a step that finishes later reports nothing twice."""

    def __init__(self, hook: Any, muted: Any) -> None:
        self._hook, self._muted = hook, muted

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._hook, name)

        def relay(**kwargs: Any) -> Any:
            return None if self._muted() else call(**kwargs)

        return relay


def _as_step_error(exc: Exception, step: str) -> StepError:
    """``exc`` as a StepError naming ``step`` (storage raises some without a step)."""
    if isinstance(exc, StepError):
        if exc.step:
            return exc
        named = type(exc)(step, exc.what, uri=exc.uri, hint=exc.hint)
    else:
        named = StepError(step, f"{type(exc).__name__}: {exc}")
    named.__cause__ = exc
    return named


def _fingerprint(bucket: Any) -> str | None:
    try:
        return str(bucket.storage.fingerprint(bucket.uri))
    except Exception:  # missing or unreadable: not an identity
        return None


def _with_attempts(error: StepError, attempts: int) -> StepError:
    rebuilt = type(error)(error.step, f"{error.what} (after {attempts} attempts)", uri=error.uri, hint=error.hint)
    rebuilt.__cause__ = error.__cause__
    if hasattr(error, "traceback"):
        rebuilt.traceback = error.traceback  # type: ignore[attr-defined]
    return rebuilt
