"""Running a payload in a worker process that can be stopped.

A step with a ``timeout`` (and every step of glacier-local's worker executor) runs in
``python -m glacier.run.worker``, in a process group of its own, so a step that runs too
long is killed with everything it started, and the parent stays responsive.

A worker never outlives the process that started it: it is told its parent's pid
(``GLACIER_WORKER_PARENT``) and exits when that process is gone (see
:mod:`glacier.run.worker`). The runner stops the workers of a run that is interrupted
through a :class:`WorkerGroup`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from glacier.errors import StepError, StepTimeoutError

if TYPE_CHECKING:
    from glacier.dag import TaskInstance
    from glacier.plugins.payload import StepOutcome

__all__ = ["PARENT_ENV", "WorkerGroup", "run_payload", "run_in_worker", "worker_group"]

#: The environment variable that tells a worker which process it belongs to.
PARENT_ENV = "GLACIER_WORKER_PARENT"


class WorkerGroup:
    """The worker processes started on behalf of one run, so they can be stopped together.

    Once :meth:`stop` was called, a worker that starts in the group is killed at once:
    a step that was about to start when the run was interrupted does not run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self.stopped = False

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        """Track a started worker (killed at once if the group was stopped)."""
        with self._lock:
            if not self.stopped:
                self._live.add(proc)
                return
        _kill(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        """Forget a worker that has ended."""
        with self._lock:
            self._live.discard(proc)

    def stop(self) -> int:
        """Kill every live worker of the group (and all they started); return how many."""
        with self._lock:
            self.stopped = True
            live, self._live = list(self._live), set()
        for proc in live:
            _kill(proc)
        return len(live)


_current = threading.local()


@contextmanager
def worker_group(group: WorkerGroup) -> Iterator[WorkerGroup]:
    """Put the workers this thread starts into ``group`` for the length of the block."""
    previous = getattr(_current, "group", None)
    _current.group = group
    try:
        yield group
    finally:
        _current.group = previous



def run_payload(payload: dict[str, Any], *, timeout: float | None, step: str) -> dict[str, Any]:
    """Run ``payload`` in a fresh worker process and return its result dict.

    Raises
    ------
    StepTimeoutError
        When the worker runs past ``timeout`` seconds (it is killed first).
    StepError
        When the worker dies without answering (killed, out of memory), or a bucket
        lives in this process's memory where the worker cannot see it.
    """
    for bucket in (*payload.get("sources", {}).values(), payload.get("target", {})):
        uri = str(bucket.get("uri", ""))
        if uri.startswith("memory://"):
            msg = "memory:// buckets live inside one process, so a worker process cannot reach them"
            raise StepError(step, msg, uri=uri, hint="use file:// buckets (LocalConfig(root=DIR)), or drop timeout= so the step runs in this process")
    env = dict(os.environ)
    env["GLACIER_STEP_PROCESS"] = "1"  # the worker executes a step, so it starts no run (glacier._guard)
    # The parent's import path, so the worker imports the same task modules.
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), *[p for p in sys.path if p]])
    proc = subprocess.Popen(
        [sys.executable, "-m", "glacier.run.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, PARENT_ENV: str(os.getpid())},
        start_new_session=True,  # its own process group: a timeout kills all it started
    )
    group: WorkerGroup | None = getattr(_current, "group", None)
    if group is not None:
        group.add(proc)
    try:
        out, err = proc.communicate(json.dumps(payload).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        msg = f"the attempt ran past its timeout of {timeout:g}s and was stopped; the target was left as it was"
        raise StepTimeoutError(step, msg, uri=payload.get("target", {}).get("uri")) from None
    except BaseException:
        _kill(proc)
        proc.communicate()
        raise
    finally:
        if group is not None:
            group.discard(proc)
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = err.decode(errors="replace").strip()[-2000:]
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited with status {proc.returncode}"
        msg = f"the worker process {how} without a result" + (f":\n{tail}" if tail else "")
        raise StepError(step, msg, uri=payload.get("target", {}).get("uri"), hint="the target was left as it was; check the task's memory use")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_in_worker(instance: TaskInstance, run_id: str, attempt: int, *, timeout: float | None) -> StepOutcome:
    """Run one step in a fresh worker process through the protocol, within ``timeout``."""
    from glacier.plugins.payload import build_payload, outcome_from_result

    result = run_payload(build_payload(instance, run_id, attempt), timeout=timeout, step=instance.name)
    return outcome_from_result(result, instance.name)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
