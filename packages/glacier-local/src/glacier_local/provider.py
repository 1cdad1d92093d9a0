"""The local provider: buckets on disk or in memory."""

from __future__ import annotations

from typing import Any, ClassVar

from glacier.provider import ProviderBackend

from glacier_local.config import LocalConfig, ProcessConfig

__all__ = ["LocalProvider"]


class LocalProvider(ProviderBackend):
    """Serves :class:`~glacier_local.config.LocalConfig`."""

    name: ClassVar[str] = "local"
    scheme: ClassVar[str] = "file"
    config: LocalConfig

    def bucket_uri(self, bucket: str, path: str) -> str:
        """``file:///ROOT/bucket/path``, or ``memory://bucket/path`` for an in-memory root."""
        if self.config.in_memory:
            return f"memory://{bucket}/{path.lstrip('/')}"
        return f"file://{self.config.root}/{bucket}/{path.lstrip('/')}"

    def default_serverless_config(self) -> Any:
        """A worker process per step."""
        return ProcessConfig()
