"""A worker process: ``python -m glacier.run.worker`` runs one payload.

Reads the payload (JSON) from standard input and writes the result (JSON) as the last
line of standard output. Whatever the task prints goes to standard error, so it cannot
corrupt the result. Used by glacier-local's process executor and by ``timeout=``.

A worker executes steps, so it starts no pipeline run (``GLACIER_STEP_PROCESS=1``, see
:mod:`glacier._guard`): importing a script to find its task skips the script's
module-level ``pipeline.run()``. The payload comes from this machine's own runner and
may name a script by file; its bucket configs are still held to the installed plugins'
config classes.

A worker dies with the process that started it: it watches its parent (the pid in
``GLACIER_WORKER_PARENT``, else the parent it had at start) and, once that process is
gone, kills its own process group (itself and whatever the task started). It checks
once more right before a file is renamed into place, so an orphan never commits a
target; a temporary file it leaves is debris that the next write removes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from glacier._guard import mark_step_process
from glacier.run.protocol import handle

__all__ = ["main", "watch_parent"]

#: Seconds between two looks at the parent.
_POLL = 0.05


def watch_parent() -> None:
    """Exit this process (and its group) as soon as the process that started it is gone."""
    from glacier.run.process import PARENT_ENV

    expected = os.environ.pop(PARENT_ENV, "")  # not inherited by what the task starts
    parent = int(expected) if expected.isdigit() else os.getppid()

    def orphaned() -> bool:
        return os.getppid() != parent

    def die() -> None:
        try:
            if os.getpgid(0) == os.getpid():  # the group is this worker's own
                os.killpg(0, signal.SIGKILL)
        finally:
            os._exit(137)

    if orphaned():  # the parent died before this process got going
        die()

    def audit(event: str, args: tuple[Any, ...]) -> None:
        # The commit of a file target is a rename: never let an orphan make it.
        if event == "os.rename" and orphaned():
            die()

    sys.addaudithook(audit)

    def watch() -> None:
        while not orphaned():
            time.sleep(_POLL)
        die()

    threading.Thread(target=watch, name="glacier-parent-watch", daemon=True).start()


def main() -> int:
    """Run the payload on stdin; always exit 0 once a result was written."""
    watch_parent()
    mark_step_process()
    payload = json.load(sys.stdin)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr  # task output must not mix with the result
    result = handle(payload)
    out.write(json.dumps(result) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
