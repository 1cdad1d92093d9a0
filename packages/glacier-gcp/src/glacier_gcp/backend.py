"""The Google Cloud provider's backend: ``gs://`` buckets and Cloud Functions as the serverless executor."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from glacier.errors import PipelineDefinitionError
from glacier.plugins.backend import ProviderBackend

from glacier_gcp.config import CloudFunctionConfig, GcpConfig

__all__ = ["GcpBackend"]

_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")


class GcpBackend(ProviderBackend):
    """Serves :class:`~glacier_gcp.config.GcpConfig`."""

    name: ClassVar[str] = "gcp"
    scheme: ClassVar[str] = "gs"
    config: GcpConfig

    def bucket_uri(self, bucket: str, path: str) -> str:
        """``gs://bucket/path``; GCS bucket names need 3 to 63 characters.

        ``Provider.bucket`` has normalized ``path`` and refused names and paths that
        leave their bucket before this is called. GCS's own naming rules are checked
        here: lowercase letters, digits, ``-``, ``_`` and ``.``, starting and ending
        with a letter or digit, and not starting with ``goog``.
        """
        if not 3 <= len(bucket) <= 63:
            msg = f"GCS bucket names need 3 to 63 characters, got {bucket!r}"
            raise PipelineDefinitionError(msg)
        if not _GCS_BUCKET.fullmatch(bucket) or bucket.startswith("goog"):
            msg = (
                f"{bucket!r} is not a GCS bucket name: GCS allows lowercase letters, digits, '-', '_' and '.', "
                "starting and ending with a letter or a digit, and no 'goog' prefix.\n\nHint: e.g. bucket=\"data-lake\""
            )
            raise PipelineDefinitionError(msg)
        return f"gs://{bucket}/{path.lstrip('/')}"

    def default_serverless_config(self) -> Any:
        """A Cloud Function with the default settings."""
        return CloudFunctionConfig()
