"""Buckets: named places in storage that steps read from and write to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from glacier.provider import Provider
    from glacier.storage import Storage

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
        The object's path inside the bucket; may be a glob for sources.
    config
        Extra per-bucket settings, kept for code generation.
    uri
        The full URI; computed by the provider when not given.

    Examples
    --------
    >>> from glacier import Provider
    >>> from glacier.config import LocalConfig
    >>> p = Provider(config=LocalConfig(root="/data"))
    >>> p.bucket(bucket="lake", path="raw/a.parquet").uri
    'file:///data/lake/raw/a.parquet'
    >>> p.bucket(bucket="lake", path="raw/a.parquet") == p.bucket(bucket="lake", path="raw//a.parquet")
    True
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
        self.provider = provider
        self.bucket = bucket
        self.path = path
        self.config = config or {}
        if uri is None:
            if provider is None:
                msg = "Bucket needs a provider or a uri"
                raise ValueError(msg)
            uri = provider.backend.bucket_uri(bucket, path)
        self.uri = _normalize(uri)
        self._storage: Storage | None = None
        self._config: Any | None = None  # the provider config of a bucket made from a URI

    @classmethod
    def from_uri(cls, uri: str, config: Any | None = None) -> Bucket:
        """A bucket for a full URI (``s3://lake/raw.parquet``), with an optional provider config.

        Examples
        --------
        >>> Bucket.from_uri("memory://lake/a.parquet").path
        'a.parquet'
        """
        scheme, _, rest = uri.partition("://") if "://" in uri else ("file", "", uri)
        bucket, _, path = rest.lstrip("/").partition("/") if scheme != "file" else ("", "", rest)
        made = cls(None, bucket, path, uri=uri if "://" in uri else f"file://{uri}")
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
    def scheme(self) -> str:
        """The URI scheme (``"s3"``, ``"file"``...)."""
        return self.uri.split("://", 1)[0]

    @property
    def storage(self) -> Storage:
        """The :class:`~glacier.storage.Storage` that serves this bucket."""
        if self._storage is None:
            from glacier.storage import storage_for

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
        from glacier.serialization import config_to_dict

        return {"uri": self.uri, "config": config_to_dict(self.provider_config)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bucket:
        """Rebuild a bucket from :meth:`to_dict`."""
        from glacier.serialization import config_from_dict

        return cls.from_uri(str(data["uri"]), config_from_dict(data.get("config")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bucket) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __repr__(self) -> str:
        return f"Bucket(bucket={self.bucket!r}, path={self.path!r})"


def _normalize(uri: str) -> str:
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    while "//" in rest:
        rest = rest.replace("//", "/")
    if scheme == "file" and not rest.startswith("/"):
        import os

        rest = os.path.abspath(rest)
    return f"{scheme}://{rest}"
