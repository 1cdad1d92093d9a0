"""The AWS provider's backend: ``s3://`` buckets and Lambda as the serverless executor."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from glacier.errors import PipelineDefinitionError
from glacier.plugins.backend import ProviderBackend

from glacier_aws.config import AwsConfig, LambdaConfig

__all__ = ["AwsBackend"]

_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")


class AwsBackend(ProviderBackend):
    """Serves :class:`~glacier_aws.config.AwsConfig`."""

    name: ClassVar[str] = "aws"
    scheme: ClassVar[str] = "s3"
    config: AwsConfig

    def bucket_uri(self, bucket: str, path: str) -> str:
        """``s3://bucket/path``; S3 bucket names need 3 to 63 characters.

        ``Provider.bucket`` has normalized ``path`` and refused names and paths that
        leave their bucket before this is called. S3's own naming rules are checked
        here: lowercase letters, digits, ``.`` and ``-``, starting and ending with a
        letter or digit.
        """
        if not 3 <= len(bucket) <= 63:
            msg = f"S3 bucket names need 3 to 63 characters, got {bucket!r}"
            raise PipelineDefinitionError(msg)
        if not _S3_BUCKET.fullmatch(bucket):
            msg = (
                f"{bucket!r} is not an S3 bucket name: S3 allows lowercase letters, digits, '.' and '-', "
                "starting and ending with a letter or a digit.\n\nHint: e.g. bucket=\"data-lake\""
            )
            raise PipelineDefinitionError(msg)
        return f"s3://{bucket}/{path.lstrip('/')}"

    def default_serverless_config(self) -> Any:
        """A Lambda function with the default settings."""
        return LambdaConfig()
