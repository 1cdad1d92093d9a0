"""The AWS provider: ``s3://`` buckets and Lambda as the serverless executor."""

from __future__ import annotations

from typing import Any, ClassVar

from glacier.provider import ProviderBackend

from glacier_aws.config import AwsConfig, LambdaConfig

__all__ = ["AwsProvider"]


class AwsProvider(ProviderBackend):
    """Serves :class:`~glacier_aws.config.AwsConfig`."""

    name: ClassVar[str] = "aws"
    scheme: ClassVar[str] = "s3"
    config: AwsConfig

    def bucket_uri(self, bucket: str, path: str) -> str:
        """``s3://bucket/path``; S3 bucket names need 3 to 63 characters."""
        if not 3 <= len(bucket) <= 63:
            msg = f"S3 bucket names need 3 to 63 characters, got {bucket!r}"
            raise ValueError(msg)
        return f"s3://{bucket}/{path.lstrip('/')}"

    def default_serverless_config(self) -> Any:
        """A Lambda function with the default settings."""
        return LambdaConfig()
