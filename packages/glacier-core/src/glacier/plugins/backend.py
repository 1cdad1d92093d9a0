"""The provider interface a plugin implements: ``ProviderBackend``.

A plugin returns one from ``glacier_provider_for_config`` for its config class; the
user's :class:`glacier.Provider` delegates bucket URIs and executor defaults to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    pass

__all__ = ["ProviderBackend"]


class ProviderBackend:
    """What a provider plugin implements for its config type.

    Subclasses set :attr:`name` and :attr:`scheme`, and override
    :meth:`default_serverless_config` when the provider has a serverless executor.

    Parameters
    ----------
    config
        The user's config object (e.g. ``AwsConfig(region="us-east-1")``).
    """

    #: Short provider name, shown in graphs and used to group generated infrastructure.
    name: ClassVar[str] = "custom"
    #: The URI scheme of this provider's buckets.
    scheme: ClassVar[str] = "file"

    def __init__(self, config: Any) -> None:
        self.config = config

    def bucket_uri(self, bucket: str, path: str) -> str:
        """The URI of ``path`` in ``bucket`` (``s3://bucket/path`` by default).

        Core calls this with ``bucket`` checked to be one segment and ``path``
        normalized and inside the bucket (see :class:`~glacier.bucket.Bucket`), and
        normalizes the URI it returns.
        """
        return f"{self.scheme}://{bucket}/{path.lstrip('/')}"

    def default_serverless_config(self) -> Any:
        """The executor config ``provider.serverless()`` uses when given none."""
        msg = f"The {self.name!r} provider has no serverless executor; pass serverless(config=...) explicitly"
        raise ValueError(msg)
