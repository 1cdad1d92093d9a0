"""The local provider's backend: buckets on disk or in memory."""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar

from glacier.errors import PipelineDefinitionError
from glacier.plugins.backend import ProviderBackend

from glacier_local.config import LocalConfig, ProcessConfig

__all__ = ["LocalBackend"]


class LocalBackend(ProviderBackend):
    """Serves :class:`~glacier_local.config.LocalConfig`."""

    name: ClassVar[str] = "local"
    scheme: ClassVar[str] = "file"
    config: LocalConfig

    def bucket_uri(self, bucket: str, path: str) -> str:
        """``file:///ROOT/bucket/path``, or ``memory://bucket/path`` for an in-memory root.

        Raises
        ------
        PipelineDefinitionError
            When the file would lie outside the root. ``Provider.bucket`` has refused
            such names already; this guards a direct call.
        """
        if self.config.in_memory:
            return f"memory://{bucket}/{path.lstrip('/')}"
        root = self.config.root.rstrip("/") or "/"
        file = posixpath.normpath(posixpath.join(root, bucket, path.lstrip("/")))
        if posixpath.commonpath([root, file]) != root or file == root:
            msg = (
                f"Bucket {bucket!r} with path {path!r} is outside the root {self.config.root} of LocalConfig ({file}).\n\n"
                "Hint: name a bucket and a path inside the root, without '..' that climbs out"
            )
            raise PipelineDefinitionError(msg)
        return f"file://{root.rstrip('/')}/{bucket}/{path.lstrip('/')}"

    def default_serverless_config(self) -> Any:
        """A worker process per step."""
        return ProcessConfig()
