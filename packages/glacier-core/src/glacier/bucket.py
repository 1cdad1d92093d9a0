"""Buckets: named places in storage that steps read from and write to.

Names and paths are normalized here, once, before a provider turns them into a URI,
so every scheme (a third party's too) gets the same rules: a bucket name is one
segment, a path is normalized like ``posixpath.normpath`` (``//``, ``.`` and ``x/..``
collapse; glob characters stay) and may not climb above its bucket.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from glacier.errors import PipelineDefinitionError

if TYPE_CHECKING:
    import polars as pl

    from glacier.provider import Provider
    from glacier.plugins.storage import Storage

__all__ = ["Bucket"]


class Bucket:
    """A storage location: one parquet object (or a glob of them) that steps read or write.

    Buckets compare and hash by URI, so two ``Bucket`` objects naming the same place are
    the same node of a pipeline's graph.

    Parameters
    ----------
    provider
        The provider that made it (its config reaches the store).
    bucket
        The bucket (or container, or top directory) name.
    path
        The object's path inside the bucket; may be a glob for sources. It is
        normalized (``raw//x/../a.parquet`` is ``raw/a.parquet``).
    config
        Extra per-bucket settings, kept for code generation.
    uri
        The full URI; computed by the provider when not given.

    Raises
    ------
    PipelineDefinitionError
        (a ``ValueError``) when the bucket name is not one segment (empty, ``.``,
        ``..`` or with a ``/``), or the path climbs above the bucket (``../x``).

    Examples
    --------
    >>> from glacier import Provider
    >>> from glacier.config import LocalConfig
    >>> p = Provider(config=LocalConfig(root="/data"))
    >>> p.bucket(bucket="lake", path="raw/a.parquet").uri
    'file:///data/lake/raw/a.parquet'
    >>> p.bucket(bucket="lake", path="raw/a.parquet") == p.bucket(bucket="lake", path="raw//a.parquet")
    True
    >>> p.bucket(bucket="lake", path="raw/tmp/../a.parquet").path
    'raw/a.parquet'
    """

    def __init__(
        self,
        provider: Provider | None,
        bucket: str,
        path: str,
        config: dict[str, Any] | None = None,
        *,
        uri: str | None = None,
    ) -> None:
        if uri is None:
            if provider is None:
                msg = "Bucket needs a provider or a uri"
                raise ValueError(msg)
            _check_bucket_name(bucket, path)
            path = _normalize_path(bucket, path)
            uri = provider.backend.bucket_uri(bucket, path)
        self.provider = provider
        self.bucket = bucket
        self.path = path
        self.config = config or {}
        self.uri = _normalize(uri)
        self._storage: Storage | None = None
        self._config: Any | None = None  # the provider config of a bucket made from a URI

    @classmethod
    def from_uri(cls, uri: str, config: Any | None = None) -> Bucket:
        """A bucket for a full URI (``s3://lake/raw.parquet``), with an optional provider config.

        The URI is normalized like a path: ``s3://lake/raw/x/../a.parquet`` is
        ``s3://lake/raw/a.parquet``. For object stores only the key changes, and a key
        that climbs above its bucket is refused.

        Examples
        --------
        >>> Bucket.from_uri("memory://lake/a.parquet").path
        'a.parquet'
        >>> Bucket.from_uri("s3://lake/raw//x/../a.parquet").uri
        's3://lake/raw/a.parquet'
        """
        normalized = _normalize(uri if "://" in uri else f"file://{uri}")
        scheme, _, rest = normalized.partition("://")
        bucket, _, path = rest.partition("/") if scheme != "file" else ("", "", rest)
        made = cls(None, bucket, path, uri=normalized)
        made._config = config
        return made

    @property
    def provider_config(self) -> Any | None:
        """The provider config that reaches this bucket's store (``None``: environment defaults)."""
        if self.provider is not None:
            return self.provider.config
        return getattr(self, "_config", None)

    @property
    def provider_name(self) -> str:
        """The name of the provider that owns this bucket (``"aws"``, ``"local"``...)."""
        if self.provider is not None:
            return self.provider.name
        return self.scheme

    @property
    def cloud(self) -> str:
        """Where the bucket's data lives: ``"local"`` (this machine), ``"aws"``, ``"gcp"``...

        The provider that made the bucket; for a bucket made from a URI, the provider of
        its scheme (:func:`~glacier.plugins.registry.scheme_provider`), else the scheme.

        Examples
        --------
        >>> Bucket.from_uri("memory://lake/a.parquet").cloud
        'local'
        >>> Bucket.from_uri("s3://lake/a.parquet").cloud
        'aws'
        """
        if self.provider is not None:
            return self.provider.name
        from glacier.plugins.registry import scheme_provider

        return scheme_provider(self.scheme) or self.scheme

    @property
    def scheme(self) -> str:
        """The URI scheme (``"s3"``, ``"file"``...)."""
        return self.uri.split("://", 1)[0]

    @property
    def storage(self) -> Storage:
        """The :class:`~glacier.plugins.storage.Storage` that serves this bucket."""
        if self._storage is None:
            from glacier.plugins.storage import storage_for

            self._storage = storage_for(self.uri, self.provider_config)
        return self._storage

    def get_uri(self) -> str:
        """The bucket's full URI (the seed's name for :attr:`uri`)."""
        return self.uri

    def scan(self) -> pl.LazyFrame:
        """A lazy scan of the bucket's parquet data."""
        return self.storage.scan(self.uri)

    def exists(self) -> bool:
        """Whether the bucket's data exists."""
        return self.storage.exists(self.uri)

    def to_dict(self) -> dict[str, Any]:
        """The bucket as JSON-ready data (URI and provider config), for other processes."""
        from glacier.plugins.serialization import config_to_dict

        return {"uri": self.uri, "config": config_to_dict(self.provider_config)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bucket:
        """Rebuild a bucket from :meth:`to_dict`."""
        from glacier.plugins.serialization import config_from_dict

        return cls.from_uri(str(data["uri"]), config_from_dict(data.get("config")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bucket) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __repr__(self) -> str:
        return f"Bucket(bucket={self.bucket!r}, path={self.path!r})"


_BUCKET_HINT = "a bucket name is one segment; put the folders in path=, e.g. provider.bucket(bucket=\"lake\", path=\"raw/events.parquet\")"


def _check_bucket_name(bucket: str, path: str) -> None:
    if bucket in ("", ".", "..") or "/" in bucket:
        msg = (
            f"Bucket name {bucket!r} (with path {path!r}) is not a single name: a bucket name is not empty, "
            f"'.' or '..', and has no '/'.\n\nHint: {_BUCKET_HINT}"
        )
        raise PipelineDefinitionError(msg)


def _clean(path: str, *, rooted: bool = False) -> str:
    """``path`` with ``//``, ``.`` and ``x/..`` collapsed, and a trailing ``/`` kept.

    A relative path (the default; leading slashes dropped) keeps a ``..`` that climbs
    above its start, for the caller to refuse; a rooted one cannot climb above ``/``.
    """
    relative = path.lstrip("/")
    if not relative.strip("/"):
        return "/" if rooted else ""
    cleaned = posixpath.normpath("/" + relative if rooted else relative)
    if cleaned == ".":
        return ""
    return cleaned + "/" if path.endswith("/") and cleaned != "/" else cleaned


def _climbs(path: str) -> bool:
    return path == ".." or path.startswith("../")


def _normalize_path(bucket: str, path: str) -> str:
    cleaned = _clean(path)
    if _climbs(cleaned):
        msg = (
            f"The path {path!r} leaves the bucket {bucket!r}: it climbs above it ({cleaned!r} once normalized).\n\n"
            f"Hint: give a path inside the bucket, e.g. path=\"raw/x.parquet\"; for a place in another bucket, "
            f"name that bucket: provider.bucket(bucket=\"other\", path=\"x.parquet\")"
        )
        raise PipelineDefinitionError(msg)
    return cleaned


def _normalize(uri: str) -> str:
    """One spelling per place: ``//``, ``.`` and ``x/..`` collapse; glob characters stay.

    ``file://`` URIs are absolute paths; for every other scheme the first segment is
    the bucket (or container, or host) and only the key after it is normalized.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    if scheme == "file":
        import os

        absolute = rest if rest.startswith("/") else os.path.abspath(rest)
        return f"file://{_clean(absolute, rooted=True)}"
    if rest.startswith("/"):  # no bucket segment (``memory:///x``): a rooted path
        return f"{scheme}://{_clean(rest, rooted=True)}"
    bucket, slash, key = rest.partition("/")
    if bucket in (".", ".."):
        msg = f"The URI {uri!r} names the bucket {bucket!r}, which is not a bucket name.\n\nHint: {_BUCKET_HINT}"
        raise PipelineDefinitionError(msg)
    cleaned = _clean(key)
    if _climbs(cleaned):
        msg = (
            f"The URI {uri!r} leaves its bucket {bucket!r}: the path {key!r} climbs above it.\n\n"
            f"Hint: give a key inside the bucket, e.g. {scheme}://{bucket}/raw/x.parquet"
        )
        raise PipelineDefinitionError(msg)
    return f"{scheme}://{bucket}{slash}{cleaned}"
