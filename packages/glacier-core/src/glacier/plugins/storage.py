"""Storage: how Glacier reads, writes and inspects the places buckets name.

The data path is polars: sources are read with ``pl.scan_parquet`` and targets are
written with the streaming ``sink_parquet``, with polars' own cloud options. Everything
around the data (exists, size, fingerprints, rename, delete) goes through fsspec.

A target is never seen half written. On file systems Glacier writes beside the target
under a hidden temporary name and renames it into place; on object stores, where one
completed upload is atomic, it writes the target in one upload (set
:attr:`Storage.atomic_upload`). A failed write removes its temporary file.

A plugin adds a scheme by subclassing :class:`Storage` and returning a
:class:`glacier.plugins.registry.Scheme` naming it from ``glacier_storage_schemes``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import fsspec
    import polars as pl

__all__ = [
    "Storage",
    "FileStorage",
    "MemoryStorage",
    "storage_for",
    "TEMP_MARKER",
    "RECORD_SUFFIX",
    "is_glob",
    "record_uri",
    "temp_pattern",
]

#: Every temporary name contains this; listings and globs of users never match it
#: because the name also starts with a dot and does not end in ``.parquet``.
TEMP_MARKER = ".glacier-tmp-"

#: The cache record of a ``cache=True`` step's target is the hidden file
#: ``.NAME`` + this suffix beside it (see :func:`record_uri`).
RECORD_SUFFIX = ".glacier.json"

_GLOB_CHARS = frozenset("*?[")


def is_glob(uri: str) -> bool:
    """Whether ``uri`` is a glob pattern (``raw/*.parquet``) rather than one object."""
    return any(c in _GLOB_CHARS for c in uri)


def record_uri(uri: str) -> str:
    """Where the cache record of the target ``uri`` lives: a hidden file beside it.

    The runner's cache (:mod:`glacier.run.cache`) reads and writes it there, and the
    access model (:mod:`glacier.infra.access`) grants it from this same name.

    Examples
    --------
    >>> record_uri("s3://lake/daily/summary.parquet")
    's3://lake/daily/.summary.parquet.glacier.json'
    """
    parent, _, name = uri.rpartition("/")
    return f"{parent}/.{name}{RECORD_SUFFIX}"


def temp_pattern(uri: str) -> str:
    """The glob that every temporary name of ``uri`` (:meth:`Storage.temp_uri`) matches.

    Examples
    --------
    >>> temp_pattern("file:///lake/out.parquet")
    'file:///lake/.out.parquet.glacier-tmp-*'
    """
    parent, _, name = uri.rpartition("/")
    return f"{parent}/.{_glob_escape(name)}{TEMP_MARKER}*"


class Storage:
    """Reads, writes and inspects URIs of one scheme for one provider configuration.

    Subclasses set :attr:`protocol` and implement :meth:`make_filesystem`, and
    :meth:`storage_options` when polars needs options to reach the store.

    Parameters
    ----------
    config
        The provider config the bucket came from (e.g. an ``AwsConfig``), or
        ``None`` for defaults from the environment.
    """

    #: The URI scheme (``"s3"``).
    protocol: ClassVar[str] = "file"
    #: polars reads and writes these URIs itself; otherwise Glacier hands polars
    #: fsspec file objects.
    native: ClassVar[bool] = True
    #: One completed upload is atomic here (object stores), so no temporary name is needed.
    atomic_upload: ClassVar[bool] = False

    def __init__(self, config: Any | None = None) -> None:
        self.config = config
        self._fs: fsspec.AbstractFileSystem | None = None

    # -- what subclasses provide ---------------------------------------------------

    def make_filesystem(self) -> fsspec.AbstractFileSystem:
        """Build the fsspec filesystem for this scheme and config."""
        raise NotImplementedError

    def storage_options(self) -> dict[str, str] | None:
        """Options for polars' ``scan_parquet``/``sink_parquet`` (object_store keys)."""
        return None

    def credential_provider(self) -> Any:
        """polars' ``credential_provider`` argument (``"auto"``: polars' own chain)."""
        return "auto"

    # -- shared behaviour ------------------------------------------------------------

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem, built on first use."""
        if self._fs is None:
            self._fs = self.make_filesystem()
        return self._fs

    def path(self, uri: str) -> str:
        """The filesystem path of ``uri`` (what fsspec calls it)."""
        return str(self.fs._strip_protocol(uri))

    def scan(self, uri: str) -> pl.LazyFrame:
        """A lazy scan of the parquet data at ``uri`` (one object or a glob)."""
        import polars as pl

        if self.native:
            return pl.scan_parquet(uri, storage_options=self.storage_options(), credential_provider=self.credential_provider())
        paths = sorted(self.fs.glob(self.path(uri))) if is_glob(uri) else [self.path(uri)]
        frames = [pl.scan_parquet(self.fs.open(p, "rb")) for p in paths]
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")

    def exists(self, uri: str) -> bool:
        """Whether ``uri`` names data (for a glob: whether anything matches)."""
        if is_glob(uri):
            return bool(self.fs.glob(self.path(uri)))
        return bool(self.fs.exists(self.path(uri)))

    def info(self, uri: str) -> dict[str, Any]:
        """The store's metadata for ``uri`` (size, mtime or ETag...), never its data."""
        return dict(self.fs.info(self.path(uri)))

    def size(self, uri: str) -> int:
        """Size of the object at ``uri`` in bytes."""
        return int(self.info(uri).get("size") or 0)

    def sizes(self, uri: str) -> dict[str, int]:
        """The size in bytes of every object ``uri`` names (one, or each match of a glob).

        From the store's metadata (a stat, or one listing for a glob): no data is read.
        A glob that matches nothing gives ``{}``.

        Raises
        ------
        FileNotFoundError
            When ``uri`` is one object and it does not exist.
        """
        if is_glob(uri):
            found = self.fs.glob(self.path(uri), detail=True)
            return {str(path): int(info.get("size") or 0) for path, info in sorted(found.items()) if info.get("type") != "directory"}
        return {self.path(uri): self.size(uri)}

    def fingerprint(self, uri: str) -> str:
        """An identity of the data at ``uri`` read from metadata only.

        Uses the store's version marker where it has one (ETag, generation, version
        id), otherwise size and modification time. For a glob, combines every match.
        """
        if is_glob(uri):
            paths = sorted(self.fs.glob(self.path(uri)))
            return "|".join(f"{p}={self.fingerprint_of(self.path_info(p))}" for p in paths)
        return self.fingerprint_of(self.info(uri))

    def path_info(self, path: str) -> dict[str, Any]:
        """The metadata of one filesystem ``path`` (not a URI) that :meth:`fingerprint_of` reads."""
        return dict(self.fs.info(path))

    @staticmethod
    def fingerprint_of(info: dict[str, Any]) -> str:
        """The fingerprint in one :meth:`info` answer (see :meth:`fingerprint`)."""
        for key in ("generation", "VersionId", "version_id", "ETag", "etag", "md5Hash"):
            if info.get(key):
                return f"{key}={str(info[key]).strip(chr(34))};size={info.get('size')}"
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
        return f"size={info.get('size')};mtime={mtime}"

    def remove(self, uri: str) -> None:
        """Delete the object at ``uri`` if it exists."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(uri))

    def temp_uri(self, uri: str) -> str:
        """A fresh temporary name beside ``uri``, hidden from globs and listings.

        The name carries the host and process id so that debris left by a killed
        process can be told apart from a write still in progress.
        """
        parent, _, name = uri.rpartition("/")
        token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        return f"{parent}/.{name}{TEMP_MARKER}{token}"

    def clean_debris(self, uri: str, *, max_age: float = 86_400.0) -> list[str]:
        """Remove temporary files beside ``uri`` left by writers that died.

        A temporary name written on this host is removed when its process is gone; one
        from another host when it is older than ``max_age`` seconds. A write still in
        progress (another run on the same target) is left alone. Only names of this
        target's own temporary files are looked at, so the cost does not grow with the
        number of other files in the directory.
        """
        removed = []
        for path, modified in self._temporaries(uri):
            base = path.rstrip("/").rpartition("/")[2]
            if _is_stale(base, modified, max_age):
                with contextlib.suppress(FileNotFoundError):
                    self._delete(path)
                removed.append(base)
        return removed

    def _temporaries(self, uri: str) -> list[tuple[str, Any]]:
        """``(path, modified)`` of every temporary file of ``uri``'s writers."""
        found = self.fs.glob(self.path(temp_pattern(uri)), detail=True)
        return [(str(path), info.get("mtime") or info.get("LastModified") or info.get("created")) for path, info in found.items()]

    def _delete(self, path: str) -> None:
        self.fs.rm(path)

    def invalidate(self, uri: str) -> None:
        """Forget what the filesystem cached about ``uri`` (polars wrote behind its back)."""
        self.fs.invalidate_cache(self.path(uri))

    def sink(self, frame: pl.LazyFrame | pl.DataFrame, uri: str) -> None:
        """Write ``frame`` to ``uri`` as parquet, streaming where polars can."""
        lazy = frame.lazy()
        if self.native:
            lazy.sink_parquet(uri, storage_options=self.storage_options(), credential_provider=self.credential_provider())
            return
        with self.fs.open(self.path(uri), "wb") as out:
            lazy.sink_parquet(out)

    def prepare_target(self, uri: str) -> None:
        """Make sure the target's parent exists (file systems need directories)."""
        parent = self.path(uri).rpartition("/")[0]
        if parent:
            self.fs.makedirs(parent, exist_ok=True)

    def commit(self, temp: str, uri: str) -> None:
        """Move a finished temporary object onto the target in one step."""
        self.fs.mv(self.path(temp), self.path(uri))

    def write(self, frame: pl.LazyFrame | pl.DataFrame, uri: str) -> None:
        """Write ``frame`` to ``uri`` atomically: readers see the old data or all of the new.

        On failure nothing is left behind and the previous content of ``uri`` stays.
        """
        self.prepare_target(uri)
        if self.atomic_upload:
            self.sink(frame, uri)
            self.invalidate(uri)
            return
        self.clean_debris(uri)
        temp = self.temp_uri(uri)
        try:
            self.sink(frame, temp)
            self.invalidate(temp)
            self.commit(temp, uri)
        except BaseException:
            with contextlib.suppress(Exception):
                self.remove(temp)
            raise

    def count_rows(self, uri: str) -> int:
        """Rows in the parquet data at ``uri``, from its footer (no data is read)."""
        import polars as pl

        return int(self.scan(uri).select(pl.len()).collect().item())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(config={self.config!r})"


class FileStorage(Storage):
    """``file://`` URIs and bare paths: the local disk, renamed into place with ``os.replace``."""

    protocol = "file"

    def make_filesystem(self) -> fsspec.AbstractFileSystem:
        """The local filesystem."""
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem()

    def path(self, uri: str) -> str:
        """The local path of a ``file://`` URI."""
        return uri.removeprefix("file://")

    def scan(self, uri: str) -> pl.LazyFrame:
        """A lazy scan of the local parquet file(s)."""
        import polars as pl

        return pl.scan_parquet(self.path(uri))

    def exists(self, uri: str) -> bool:
        """Whether the file exists (or, for a glob, anything matches)."""
        if is_glob(uri):
            return bool(self.fs.glob(self.path(uri)))
        return os.path.exists(self.path(uri))

    def info(self, uri: str) -> dict[str, Any]:
        """Size, modification and change time (nanoseconds) and inode of the file."""
        return self._stat(self.path(uri))

    @staticmethod
    def _stat(path: str) -> dict[str, Any]:
        st = os.stat(path)
        return {"size": st.st_size, "mtime": st.st_mtime_ns, "ctime": st.st_ctime_ns, "ino": st.st_ino, "type": "file"}

    def path_info(self, path: str) -> dict[str, Any]:
        """Size, modification and change time and inode of the file at ``path``."""
        return self._stat(path)

    @staticmethod
    def fingerprint_of(info: dict[str, Any]) -> str:
        """The fingerprint in one :meth:`info` answer.

        Size and modification time alone miss a rewrite that keeps the size and sets the
        old modification time back (``os.utime``, ``touch -r``, a copy that keeps times):
        the change time cannot be set back by hand, and a file renamed over the old one
        has another inode.
        """
        return f"size={info.get('size')};mtime={info.get('mtime')};ctime={info.get('ctime')};ino={info.get('ino')}"

    def prepare_target(self, uri: str) -> None:
        """Create the target's directory."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path(uri))), exist_ok=True)

    def invalidate(self, uri: str) -> None:
        """Nothing: the local path uses ``os`` directly and caches nothing."""

    def _temporaries(self, uri: str) -> list[tuple[str, Any]]:
        """The target's temporary files, found with ``glob`` (no fsspec on the local path)."""
        import glob

        path = self.path(uri)
        folder, name = os.path.split(path)
        found = []
        for match in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}{TEMP_MARKER}*")):
            with contextlib.suppress(FileNotFoundError):
                found.append((match, os.stat(match).st_mtime))
        return found

    def _delete(self, path: str) -> None:
        os.remove(path)

    def sink(self, frame: pl.LazyFrame | pl.DataFrame, uri: str) -> None:
        """Stream ``frame`` into the local file."""
        frame.lazy().sink_parquet(self.path(uri))

    def commit(self, temp: str, uri: str) -> None:
        """``os.replace``: atomic on POSIX file systems."""
        os.replace(self.path(temp), self.path(uri))

    def remove(self, uri: str) -> None:
        """Delete the file if it exists."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path(uri))


class MemoryStorage(Storage):
    """``memory://`` URIs: fsspec's in-memory filesystem, private to this process."""

    protocol = "memory"
    native = False

    def make_filesystem(self) -> fsspec.AbstractFileSystem:
        """fsspec's process-wide memory filesystem."""
        from fsspec.implementations.memory import MemoryFileSystem

        return MemoryFileSystem()

    def prepare_target(self, uri: str) -> None:
        """Nothing to prepare: memory paths need no directories."""


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _is_stale(base: str, modified: Any, max_age: float) -> bool:
    """Whether a temporary file's writer is gone (its name says host, pid, token)."""
    token = base.partition(TEMP_MARKER)[2]
    owner_host, _, pid = token.rpartition("-")[0].rpartition("-")
    if owner_host == socket.gethostname() and pid.isdigit():
        return not _pid_alive(int(pid))
    return _age(modified) > max_age


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _age(modified: Any) -> float:
    import time
    from datetime import datetime

    if isinstance(modified, datetime):
        return time.time() - modified.timestamp()
    if isinstance(modified, (int, float)):
        return time.time() - float(modified)
    return 0.0


_storages: dict[tuple[str, str, str], Storage] = {}


def storage_for(uri: str, config: Any | None = None) -> Storage:
    """The :class:`Storage` for ``uri`` under ``config``, shared per scheme and config.

    Raises
    ------
    UnknownSchemeError
        When no installed plugin handles the URI's scheme.
    """
    from glacier.plugins.registry import import_object, scheme_for

    scheme = scheme_for(uri)
    key = (scheme.name, type(config).__qualname__, repr(config))
    found = _storages.get(key)
    if found is None:
        cls = import_object(scheme.storage)
        found = _storages.setdefault(key, cls(config))
    return found
