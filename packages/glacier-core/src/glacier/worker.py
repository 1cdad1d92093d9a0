"""A worker process: ``python -m glacier.worker`` runs one payload.

Reads the payload (JSON) from standard input and writes the result (JSON) as the last
line of standard output. Whatever the task prints goes to standard error, so it cannot
corrupt the result. Used by glacier-local's process executor and by ``timeout=``.

A worker executes steps, so it starts no pipeline run (``GLACIER_STEP_PROCESS=1``, see
:mod:`glacier._guard`): importing a script to find its task skips the script's
module-level ``pipeline.run()``. The payload comes from this machine's own runner and
may name a script by file; its bucket configs are still held to the installed plugins'
config classes.
"""

from __future__ import annotations

import json
import os
import sys

from glacier._guard import mark_step_process
from glacier.protocol import handle

__all__ = ["main"]


def main() -> int:
    """Run the payload on stdin; always exit 0 once a result was written."""
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
