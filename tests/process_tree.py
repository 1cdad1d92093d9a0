"""Run a command whose descendants might multiply, without letting them take the machine down.

Two guards, so that even code that starts workers from workers is harmless under test:

- a ``sitecustomize.py`` put first on the child's ``PYTHONPATH`` counts interpreter depth
  in an environment variable and makes any Python deeper than :data:`MAX_DEPTH`
  ``os._exit(99)`` at start-up (the command itself is depth 1); it also logs every interpreter it starts, which gives an
  exact count of the Python processes the command started, however short-lived;
- a watchdog thread looks at ``/proc`` every 50 ms for processes carrying the run's tag
  in their environment (workers start sessions of their own and may be re-parented, so a
  walk by parent id alone could lose them) and SIGKILLs all of them once more than
  ``cap`` are alive, or when the deadline passes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

#: A Python started more than this many levels below the command exits at once with status 99.
MAX_DEPTH = 2

_TAG = "GLACIER_TEST_TREE"
_DEPTH = "GLACIER_TEST_DEPTH"
_LOG = "GLACIER_TEST_SPAWN_LOG"

SITECUSTOMIZE = f'''
import os
_depth = int(os.environ.get("{_DEPTH}", "0")) + 1
os.environ["{_DEPTH}"] = str(_depth)
_log = os.environ.get("{_LOG}")
if _log:
    with open(_log, "a") as _f:
        _f.write(f"{{os.getpid()}} {{_depth}}\\n")
if _depth > {MAX_DEPTH} + 1:
    os._exit(99)
'''


@dataclass
class TreeRun:
    """What a capped run did."""

    returncode: int
    stdout: str
    stderr: str
    #: Every Python interpreter started, the command itself included: (pid, depth).
    pythons: list[tuple[int, int]] = field(default_factory=list)
    #: The most tagged processes alive at one time, as the watchdog saw them.
    most_alive: int = 0
    #: Why the watchdog killed the tree, if it did.
    killed: str | None = None

    @property
    def workers(self) -> int:
        """Python processes started below the command (workers of any depth)."""
        return sum(1 for _, depth in self.pythons if depth > 1)


def guard_dir(tmp_path: Path) -> Path:
    """A folder holding the depth guard's ``sitecustomize.py``."""
    folder = tmp_path / "depth-guard"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


def tagged_env(tmp_path: Path, env: dict[str, str] | None = None) -> tuple[dict[str, str], str, Path]:
    """An environment that carries a fresh tag, the depth guard and a spawn log."""
    tag = uuid.uuid4().hex
    log = tmp_path / f"spawned-{tag}.log"
    base = dict(os.environ if env is None else env)
    base.pop(_DEPTH, None)
    base[_TAG] = tag
    base[_LOG] = str(log)
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(guard_dir(tmp_path)), base.get("PYTHONPATH", "")]))
    return base, tag, log


def tagged_pids(tag: str) -> set[int]:
    """The live processes whose environment carries ``tag``."""
    needle = f"{_TAG}={tag}".encode()
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


def kill_tagged(tag: str) -> None:
    """SIGKILL every live process that carries ``tag`` (until none is left)."""
    for _ in range(20):
        pids = tagged_pids(tag)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)


def run_capped(command: list[str], tmp_path: Path, *, cap: int = 8, deadline: float = 120.0,
               env: dict[str, str] | None = None, cwd: Path | None = None, stdin: bytes | None = None) -> TreeRun:
    """Run ``command`` with the depth guard, killing its whole tree past ``cap`` processes or ``deadline`` seconds."""
    full_env, tag, log = tagged_env(tmp_path, env)
    proc = subprocess.Popen(command, env=full_env, cwd=cwd or tmp_path, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    run = TreeRun(returncode=0, stdout="", stderr="")
    done = threading.Event()

    def watch() -> None:
        end = time.monotonic() + deadline
        while not done.is_set():
            alive = tagged_pids(tag)
            run.most_alive = max(run.most_alive, len(alive))
            if len(alive) > cap:
                run.killed = f"{len(alive)} processes alive, over the cap of {cap}"
            elif time.monotonic() > end:
                run.killed = f"still running after {deadline:g}s"
            if run.killed:
                kill_tagged(tag)
                return
            done.wait(0.05)

    watchdog = threading.Thread(target=watch, daemon=True)
    watchdog.start()
    try:
        out, err = proc.communicate(stdin)
    finally:
        done.set()
        watchdog.join()
        kill_tagged(tag)  # workers left behind (they run in sessions of their own)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run.returncode, run.stdout, run.stderr = proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    if log.exists():
        for line in log.read_text().splitlines():
            pid, depth = line.split()
            run.pythons.append((int(pid), int(depth)))
    return run
