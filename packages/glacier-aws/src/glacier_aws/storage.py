"""``s3://`` storage: polars streams the data, s3fs does everything around it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from glacier.storage import Storage

if TYPE_CHECKING:
    import fsspec

    from glacier_aws.config import AwsConfig

__all__ = ["S3Storage", "polars_storage_options"]


def polars_storage_options(config: AwsConfig | None) -> dict[str, str]:
    """polars (object_store) options for a config: region and endpoint.

    Credentials are left to polars' own AWS chain (environment, profile, role). The
    keys are object_store's: ``aws_region``, ``aws_endpoint_url``, ``aws_allow_http``;
    fsspec's ``key``/``secret`` would be silently ignored.

    Examples
    --------
    >>> from glacier_aws.config import AwsConfig
    >>> polars_storage_options(AwsConfig(region="eu-west-1", endpoint_url="http://127.0.0.1:9000"))
    {'aws_region': 'eu-west-1', 'aws_endpoint_url': 'http://127.0.0.1:9000', 'aws_allow_http': 'true'}
    """
    if config is None:
        return {}
    options = {"aws_region": config.region}
    endpoint = config.endpoint_for("s3")
    if endpoint:
        options["aws_endpoint_url"] = endpoint
        if endpoint.startswith("http://"):
            options["aws_allow_http"] = "true"
    return options


class S3Storage(Storage):
    """Amazon S3 and S3-compatible stores.

    One completed upload is atomic on S3 (a multipart upload is invisible until it is
    completed), so targets are written in place and never seen half written.
    """

    protocol: ClassVar[str] = "s3"
    native: ClassVar[bool] = True
    atomic_upload: ClassVar[bool] = True
    config: AwsConfig | None

    def make_filesystem(self) -> fsspec.AbstractFileSystem:
        """An s3fs filesystem for the config's region, profile and endpoint."""
        try:
            import s3fs
        except ImportError as exc:  # pragma: no cover - s3fs is a dependency
            from glacier.errors import PluginNotInstalledError

            raise PluginNotInstalledError("s3:// needs s3fs.", "glacier-aws") from exc
        kwargs: dict[str, Any] = {"client_kwargs": {}}
        if self.config is not None:
            kwargs["client_kwargs"]["region_name"] = self.config.region
            if self.config.profile:
                kwargs["profile"] = self.config.profile
            endpoint = self.config.endpoint_for("s3")
            if endpoint:
                kwargs["endpoint_url"] = endpoint
        return s3fs.S3FileSystem(**kwargs)

    def storage_options(self) -> dict[str, str] | None:
        """Region and endpoint for polars; see :func:`polars_storage_options`."""
        return polars_storage_options(self.config) or None

    def prepare_target(self, uri: str) -> None:
        """Nothing: object stores have no directories (and s3fs's ``makedirs`` would
        probe, or even try to create, the bucket, which a least-privilege role may not)."""

    def credential_provider(self) -> Any:
        """A polars credential provider for a named profile, else polars' default chain."""
        if self.config is not None and self.config.profile:
            import polars as pl

            return pl.CredentialProviderAWS(profile_name=self.config.profile)
        return "auto"
