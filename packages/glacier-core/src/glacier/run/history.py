"""Run records: one JSON file per run, under the state directory.

Every run writes ``STATE/runs/PIPELINE/RUN_ID.json`` (run id, pipeline, start and end,
each step's status, attempts, rows, bytes, seconds, input and output fingerprints,
error). The record is written when the run starts, as steps finish, and at the end,
each time to a temporary file renamed into place, so a reader never sees half a
record and two runs never write the same file. ``resume=True`` reads the last one.

A record's ``state`` is ``running``, ``finished`` or ``interrupted`` (Ctrl-C). A record
also names the process that writes it (``pid``, ``host``), so a reader can tell a run
that is still going from one whose process was killed: :class:`RunStore` reads the
latter as ``interrupted`` too (the file itself keeps what the process last wrote).

The state directory is, in order: the pipeline's ``state_dir=`` setting, the
``GLACIER_STATE_DIR`` environment variable, ``.glacier`` in the working directory.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Any

from glacier._atomic import write_atomic
from glacier._state import state_dir

__all__ = ["RunStore", "owner", "state_dir"]


def owner() -> dict[str, Any]:
    """What a record says about the process writing it: ``pid``, ``host``, ``pid_started``.

    ``pid_started`` is the process's start time as the kernel counts it (Linux), so a
    reader is not fooled by a new process that got the same pid; ``None`` elsewhere.
    """
    stat = _process_stat(os.getpid())
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_started": stat[1] if stat else None}


def _process_stat(pid: int) -> tuple[str, int] | None:
    """A process's state letter and start time from ``/proc`` (``None`` without it)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after the command name, which may hold spaces
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _owner_gone(record: dict[str, Any]) -> bool:
    """Whether the process that wrote a ``running`` record is certainly gone."""
    pid = record.get("pid")
    if not isinstance(pid, int) or record.get("host") != socket.gethostname() or os.name == "nt":
        return False  # another machine's run, an old record, or no safe way to ask
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, and someone else's
    stat = _process_stat(pid)
    if stat is None:
        return False
    state, started = stat
    return state == "Z" or (record.get("pid_started") is not None and started != record["pid_started"])


def _as_read(record: dict[str, Any]) -> dict[str, Any]:
    if record.get("state") == "running" and _owner_gone(record):
        record["state"] = "interrupted"
        record["note"] = record.get("note") or f"the process that ran it (pid {record['pid']} on {record['host']}) is gone"
    return record


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


class RunStore:
    """Reads and writes run records under a state directory.

    Examples
    --------
    >>> store = RunStore(tmp / "state")
    >>> path = store.write({"run_id": "20261125T174512-3f9a1c", "pipeline": "etl", "state": "succeeded"})
    >>> [(r["run_id"], r["pipeline"]) for r in store.list()]
    [('20261125T174512-3f9a1c', 'etl')]
    >>> store.load("20261125T1745")["state"]      # a unique prefix is enough
    'succeeded'
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = state_dir(root)

    def path(self, pipeline: str, run_id: str) -> Path:
        """Where a run's record lives."""
        return self.root / "runs" / _safe(pipeline) / f"{_safe(run_id)}.json"

    def write(self, record: dict[str, Any], *, durable: bool = True) -> Path:
        """Write (or replace) a run's record atomically.

        ``durable=False`` skips the ``fsync``: used for the in-progress record, which
        would otherwise wait for the step's just-written data to reach the disk.
        """
        target = self.path(str(record["pipeline"]), str(record["run_id"]))
        write_atomic(target, json.dumps(record, indent=2, default=str), durable=durable)
        return target

    def list(self, pipeline: str | None = None) -> list[dict[str, Any]]:
        """Every readable record, oldest first (optionally of one pipeline).

        A ``running`` record whose process is gone reads as ``interrupted``.
        """
        base = self.root / "runs"
        folders = [base / _safe(pipeline)] if pipeline else sorted(p for p in base.glob("*") if p.is_dir())
        records = []
        for folder in folders:
            for file in sorted(folder.glob("*.json")):
                try:
                    records.append(_as_read(json.loads(file.read_text())))
                except (OSError, ValueError):
                    continue  # a record being replaced right now; the rename makes it whole
        return sorted(records, key=lambda r: (r.get("started") or 0, r.get("run_id", "")))

    def load(self, run_id: str) -> dict[str, Any]:
        """The record of one run, by id (a unique prefix is enough).

        A ``running`` record whose process is gone reads as ``interrupted``.

        Raises
        ------
        KeyError
            When no run, or more than one, matches.
        """
        matches = [p for p in (self.root / "runs").glob(f"*/{_safe(run_id)}*.json")]
        if len(matches) != 1:
            how = "no run" if not matches else f"{len(matches)} runs"
            msg = f"{how} with id {run_id!r} in {self.root}"
            raise KeyError(msg)
        data: dict[str, Any] = json.loads(matches[0].read_text())
        return _as_read(data)

    def last(self, pipeline: str, *, before: str | None = None) -> dict[str, Any] | None:
        """The most recent record of ``pipeline`` (other than run ``before``), if any."""
        records = [r for r in self.list(pipeline) if r.get("run_id") != before]
        return records[-1] if records else None
