"""``s3://`` storage: polars streams the data, s3fs does everything around it.

Both clients fail fast when S3 cannot be reached: a connect timeout of
``AwsConfig.connect_timeout`` seconds and ``AwsConfig.max_attempts`` attempts per
request (instead of the clients' defaults, which keep a step waiting for half a
minute), and an unreachable endpoint is a
:class:`~glacier.errors.StorageUnreachableError` that names it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from glacier.errors import StorageUnreachableError
from glacier.plugins.storage import Storage

if TYPE_CHECKING:
    import fsspec

    from glacier_aws.config import AwsConfig

__all__ = ["BotocoreCredentials", "S3Storage", "polars_storage_options"]


def polars_storage_options(config: AwsConfig | None) -> dict[str, Any]:
    """polars (object_store) options for a config: region, endpoint, timeouts and retries.

    Credentials are left to polars' own AWS chain (environment, profile, role). The
    keys are object_store's: ``aws_region``, ``aws_endpoint_url``, ``aws_allow_http``,
    ``connect_timeout``, and polars' own ``max_retries`` (an integer); fsspec's
    ``key``/``secret`` would be silently ignored.

    Examples
    --------
    >>> from glacier_aws.config import AwsConfig
    >>> polars_storage_options(AwsConfig(region="eu-west-1", endpoint_url="http://127.0.0.1:9000"))  # doctest: +NORMALIZE_WHITESPACE
    {'aws_region': 'eu-west-1', 'connect_timeout': '5s', 'max_retries': 1,
     'aws_endpoint_url': 'http://127.0.0.1:9000', 'aws_allow_http': 'true'}
    """
    if config is None:
        return {}
    options: dict[str, Any] = {
        "aws_region": config.region,
        "connect_timeout": f"{config.connect_timeout:g}s",
        "max_retries": config.max_attempts - 1,
    }
    endpoint = config.endpoint_for("s3")
    if endpoint:
        options["aws_endpoint_url"] = endpoint
        if endpoint.startswith("http://"):
            options["aws_allow_http"] = "true"
    return options


class BotocoreCredentials:
    """A polars credential provider over botocore's own credential chain: the session s3fs uses.

    Where a function of another cloud reaches S3 with a web identity
    (``AWS_WEB_IDENTITY_TOKEN_FILE``, set by :mod:`glacier_aws.identity`), polars is given
    this instead of its own chain: botocore calls ``AssumeRoleWithWebIdentity`` (at
    ``AWS_ENDPOINT_URL_STS`` when set) and refreshes the session before it expires, and
    needs no boto3 (which an artifact of another cloud does not carry), and s3fs and
    polars share one session. (polars' ``"auto"`` chain hands an ``http://`` S3 endpoint's
    options to object_store, whose own web identity client honours ``AWS_ENDPOINT_URL_STS``
    but refuses to call STS over ``http``: "URL scheme is not allowed".)

    Calling it returns polars' ``(credentials, expiry)``: the keys ``aws_access_key_id``,
    ``aws_secret_access_key`` and ``aws_session_token``, and the expiry in seconds since
    the epoch (``None`` for credentials that do not expire).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._credentials: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {}  # a copy (polars pickles providers) finds its own session

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._lock = threading.Lock()
        self._credentials = None

    def __call__(self) -> tuple[dict[str, str], int | None]:
        """The current credentials of botocore's chain, refreshed by botocore when they are about to expire."""
        with self._lock:
            if self._credentials is None:
                import botocore.session

                self._credentials = botocore.session.get_session().get_credentials()
            credentials = self._credentials
        if credentials is None:
            msg = "botocore's credential chain found no AWS credentials (no keys, web identity token file, profile or role)"
            raise RuntimeError(msg)
        frozen = credentials.get_frozen_credentials()
        values = {"aws_access_key_id": frozen.access_key, "aws_secret_access_key": frozen.secret_key}
        if frozen.token:
            values["aws_session_token"] = frozen.token
        expiry = getattr(credentials, "_expiry_time", None)
        return values, int(expiry.timestamp()) if isinstance(expiry, datetime) else None


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
            kwargs["config_kwargs"] = {
                "connect_timeout": self.config.connect_timeout,
                "retries": {"mode": "standard", "max_attempts": self.config.max_attempts},
            }
            kwargs["client_kwargs"]["region_name"] = self.config.region
            if self.config.profile:
                kwargs["profile"] = self.config.profile
            endpoint = self.config.endpoint_for("s3")
            if endpoint:
                kwargs["endpoint_url"] = endpoint
        return s3fs.S3FileSystem(**kwargs)

    def storage_options(self) -> dict[str, Any] | None:
        """Region, endpoint, timeouts and retries for polars; see :func:`polars_storage_options`."""
        return polars_storage_options(self.config) or None

    def exists(self, uri: str) -> bool:
        """Whether ``uri`` names data; raises StorageUnreachableError when S3 cannot be reached."""
        with self._reaching(uri):
            return super().exists(uri)

    def info(self, uri: str) -> dict[str, Any]:
        """S3's metadata for ``uri``; raises StorageUnreachableError when S3 cannot be reached."""
        with self._reaching(uri):
            return super().info(uri)

    @contextlib.contextmanager
    def _reaching(self, uri: str) -> Iterator[None]:
        from botocore.exceptions import ConnectionError as BotoConnectionError

        try:
            yield
        except BotoConnectionError as exc:  # refused, no such host, timed out: not a missing object
            endpoint = self.config.endpoint_for("s3") if self.config is not None else None
            if endpoint:
                where = endpoint
                hint = f"check that the S3-compatible service at {endpoint} is running, or point AwsConfig(endpoint_url=...) at the right address"
            else:
                region = self.config.region if self.config is not None else "the default region"
                where = f"AWS's S3 endpoint for {region}"
                hint = "check this machine's network access to AWS and the region in AwsConfig(region=...), or set AwsConfig(endpoint_url=...)"
            msg = f"cannot reach S3 at {where} ({exc})"
            raise StorageUnreachableError("", msg, uri=uri, hint=hint) from exc

    def prepare_target(self, uri: str) -> None:
        """Nothing: object stores have no directories (and s3fs's ``makedirs`` would
        probe, or even try to create, the bucket, which a least-privilege role may not)."""

    def credential_provider(self) -> Any:
        """A polars credential provider for a named profile; botocore's chain for a web identity (:class:`BotocoreCredentials`); else polars' default chain."""
        if self.config is not None and self.config.profile:
            import polars as pl

            return pl.CredentialProviderAWS(profile_name=self.config.profile)
        if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
            return BotocoreCredentials()
        return "auto"
