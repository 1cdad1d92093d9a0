"""One way to write a local file so that no reader ever sees half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_file", "write_atomic"]


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, durable: bool = False) -> Iterator[IO[bytes]]:
    """Write ``path`` through a temporary file beside it, renamed into place on success.

    The temporary name is unique (``mkstemp``), so two writers never share one; on any
    error it is removed and ``path`` keeps its old content. ``durable=True`` also
    ``fsync``s the file before the rename (a record that must survive a power cut).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` with :func:`atomic_file`; return the path."""
    with atomic_file(path, durable=durable) as out:
        out.write(data.encode() if isinstance(data, str) else data)
    return Path(path)

