"""Fingerprints for ``cache=True``: skip a step whose code and inputs did not change.

A step's cache key hashes the task's code (its function's source and the options it
was declared with), each source's identity as the storage reports it (ETag,
generation or version where the store has one, otherwise size and modification
time; read from metadata, never from the data) and Glacier's version. After a
successful run the key and the target's own fingerprint are stored beside the target
in a small hidden JSON file, ``.NAME.glacier.json``. The step is skipped when that
record's key matches and the target still has the fingerprint it had when written.

Only the task function's own source is hashed: a change in a helper it calls is not
seen. Change the task (or delete the record) to force a re-run.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glacier.bucket import Bucket
    from glacier.dag import TaskInstance

__all__ = ["code_fingerprint", "cache_key", "record_uri", "read_record", "write_record"]

RECORD_SUFFIX = ".glacier.json"


def code_fingerprint(instance: TaskInstance) -> str:
    """A hash of the task's function source and the options it was declared with."""
    task = instance.task
    try:
        source = inspect.getsource(task.func)
    except (OSError, TypeError):
        source = task.func.__code__.co_code.hex() if hasattr(task.func, "__code__") else repr(task.func)
    declared = json.dumps({"name": task.name, "config": task.config, "params": sorted(instance.sources)}, sort_keys=True, default=str)
    return hashlib.sha256(f"{source}\0{declared}".encode()).hexdigest()


def cache_key(instance: TaskInstance, inputs: dict[str, str]) -> str:
    """The cache key of a step: code, input fingerprints and Glacier's version."""
    from glacier import __version__

    material = json.dumps({"code": code_fingerprint(instance), "inputs": inputs, "glacier": __version__, "target": instance.target.uri}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def record_uri(target: Bucket) -> str:
    """Where the cache record of ``target`` lives: a hidden file beside it."""
    parent, _, name = target.uri.rpartition("/")
    return f"{parent}/.{name}{RECORD_SUFFIX}"


def read_record(target: Bucket) -> dict[str, Any] | None:
    """The cache record beside ``target``, or ``None`` when missing or unreadable."""
    storage = target.storage
    uri = record_uri(target)
    try:
        with storage.fs.open(storage.path(uri), "rb") as f:
            data: dict[str, Any] = json.loads(f.read())
        return data
    except (OSError, ValueError):
        return None


def write_record(target: Bucket, record: dict[str, Any]) -> None:
    """Store the cache record beside ``target`` (one small write, atomic on each store)."""
    storage = target.storage
    uri = record_uri(target)
    payload = json.dumps(record, sort_keys=True).encode()
    if storage.atomic_upload:
        storage.fs.pipe_file(storage.path(uri), payload)
        return
    temp = storage.temp_uri(uri)
    storage.fs.pipe_file(storage.path(temp), payload)
    storage.commit(temp, uri)
