"""``gs://`` storage: polars scans the data natively, gcsfs does everything around it and uploads targets.

Reading goes through polars' own ``gs://`` client (object_store) with the options of
:func:`polars_storage_options`. A target is written by streaming polars' parquet sink
into one gcsfs upload: GCS makes an object visible only when its upload completes, so
a reader sees the old object or the whole new one, never a part; a failed write cancels
its upload and leaves the old object as it was. This is also the path real GCS takes
(polars' native ``gs://`` writes cannot be exercised against any emulator here, so
Glacier does not use them). The cache fingerprint of an object is its generation.

Where gcsfs is not installed (inside another cloud's function, whose artifact carries
only google-auth and requests for ``gs://``), everything around the data and the upload
go through :class:`glacier_gcp.light.LightGcsFileSystem` instead, with the same
guarantees: one upload per target, generations as fingerprints.

Credentials are Google's Application Default Credentials, looked up by gcsfs (or
google-auth) and by polars. With an endpoint set (``GcpConfig(endpoint_url=...)`` or
``STORAGE_EMULATOR_HOST``) and no credentials file in the chain, access is anonymous,
as an emulator needs, and neither client asks Google's metadata server.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from glacier.errors import StorageUnreachableError
from glacier.plugins.storage import Storage

if TYPE_CHECKING:
    from collections.abc import Iterator

    import fsspec
    import polars as pl

    from glacier_gcp.config import GcpConfig

__all__ = ["GcsStorage", "LightGcsStorage", "polars_storage_options", "storage_endpoint", "is_anonymous"]


def storage_endpoint(config: GcpConfig | None) -> str | None:
    """Where storage requests go: the config's endpoint, else ``STORAGE_EMULATOR_HOST``, else Google's (``None``).

    Examples
    --------
    >>> from glacier_gcp.config import GcpConfig
    >>> storage_endpoint(GcpConfig(project="p", service_endpoints={"storage": "http://127.0.0.1:4443/"}))
    'http://127.0.0.1:4443'
    """
    endpoint = config.endpoint_for("storage") if config is not None else None
    endpoint = endpoint or os.environ.get("STORAGE_EMULATOR_HOST") or None
    if endpoint is None:
        return None
    if "://" not in endpoint:  # Google's libraries accept "host:port" there
        endpoint = f"http://{endpoint}"
    return endpoint.rstrip("/")


def _credentials_file() -> Path | None:
    """A credentials file of the ADC chain, found without any network call."""
    named = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        return Path(named)
    config_dir = os.environ.get("CLOUDSDK_CONFIG") or str(Path.home() / ".config" / "gcloud")
    well_known = Path(config_dir) / "application_default_credentials.json"
    return well_known if well_known.is_file() else None


def is_anonymous(config: GcpConfig | None) -> bool:
    """Whether storage is reached without credentials: an endpoint is set and no credentials file is in the chain.

    Only the files of the chain are looked at, never the metadata server, so an
    emulator run touches no network beside the emulator.
    """
    return storage_endpoint(config) is not None and _credentials_file() is None


def polars_storage_options(config: GcpConfig | None) -> dict[str, Any]:
    """polars (object_store) options for a config: the endpoint, and anonymous access when that applies.

    The key that moves polars' GCS client to another endpoint is ``google_base_url``
    (``gcs_base_url`` and ``endpoint`` are silently ignored); ``skip_signature`` sends
    requests unsigned, so that no credential is looked up. Against Google's own
    endpoint the options are empty and polars uses Application Default Credentials.

    Examples
    --------
    >>> from glacier_gcp.config import GcpConfig
    >>> polars_storage_options(GcpConfig(project="p"))
    {}
    """
    endpoint = storage_endpoint(config)
    if endpoint is None:
        return {}
    options: dict[str, Any] = {"google_base_url": endpoint}
    if is_anonymous(config):
        options["skip_signature"] = "true"
    return options


class GcsStorage(Storage):
    """Google Cloud Storage, and stores that speak its JSON API (fake-gcs-server).

    One completed upload is atomic on GCS, so targets are written in place, in one
    upload, and never seen half written.
    """

    protocol: ClassVar[str] = "gs"
    native: ClassVar[bool] = True
    atomic_upload: ClassVar[bool] = True
    config: GcpConfig | None

    def make_filesystem(self) -> fsspec.AbstractFileSystem:
        """A gcsfs filesystem for the config's project and endpoint (anonymous where :func:`is_anonymous`).

        Without gcsfs (a function of another cloud), the light client of
        :mod:`glacier_gcp.light`, with the same endpoint and anonymity.
        """
        try:
            # gcsfs.core's class (the package's default wraps it in an experimental
            # hierarchical-namespace class that probes every bucket over gRPC first), failing
            # fast where nothing answers (see glacier_gcp._gcsfs).
            import gcsfs.core  # noqa: F401
        except ImportError:
            return self.make_light_filesystem()
        from glacier_gcp._gcsfs import FastFailGCSFileSystem

        kwargs: dict[str, Any] = {}
        if self.config is not None and self.config.project:
            kwargs["project"] = self.config.project
        endpoint = storage_endpoint(self.config)
        if endpoint is not None:
            kwargs["endpoint_url"] = endpoint
        kwargs["token"] = "anon" if is_anonymous(self.config) else "google_default"
        return FastFailGCSFileSystem(**kwargs)

    def make_light_filesystem(self) -> fsspec.AbstractFileSystem:
        """The light client (:class:`~glacier_gcp.light.LightGcsFileSystem`) for the config's endpoint."""
        try:
            from glacier_gcp.light import LightGcsFileSystem
        except ImportError as exc:  # neither gcsfs nor google-auth/requests
            from glacier.errors import PluginNotInstalledError

            raise PluginNotInstalledError("gs:// needs gcsfs, or google-auth and requests.", "glacier-gcp") from exc
        return LightGcsFileSystem(storage_endpoint(self.config), anonymous=is_anonymous(self.config))

    def storage_options(self) -> dict[str, Any] | None:
        """The endpoint (and anonymous access) for polars; see :func:`polars_storage_options`."""
        return polars_storage_options(self.config) or None

    def credential_provider(self) -> Any:
        """``None`` when anonymous (polars then looks up nothing), else polars' own chain (``"auto"``)."""
        return None if is_anonymous(self.config) else "auto"

    def exists(self, uri: str) -> bool:
        """Whether ``uri`` names data; raises StorageUnreachableError when GCS cannot be reached."""
        with self._reaching(uri):
            return super().exists(uri)

    def info(self, uri: str) -> dict[str, Any]:
        """GCS's metadata for ``uri``; raises StorageUnreachableError when GCS cannot be reached."""
        with self._reaching(uri):
            return super().info(uri)

    @contextlib.contextmanager
    def _reaching(self, uri: str) -> Iterator[None]:
        try:
            yield
        except ConnectionError as exc:  # refused, no such host: not a missing object
            if isinstance(exc, StorageUnreachableError):
                raise
            endpoint = storage_endpoint(self.config)
            where = endpoint or "Google's storage endpoint"
            hint = (
                f"check that the GCS endpoint {endpoint} is running and reachable, or set GcpConfig(endpoint_url=...)"
                if endpoint
                else "check this machine's network access to storage.googleapis.com, or set GcpConfig(endpoint_url=...)"
            )
            raise StorageUnreachableError("", f"cannot reach GCS at {where} ({exc})", uri=uri, hint=hint) from exc

    def sink(self, frame: pl.LazyFrame | pl.DataFrame, uri: str) -> None:
        """Stream ``frame`` as parquet into one gcsfs upload; on failure the upload is cancelled, not completed."""
        with self._reaching(uri):
            out = self.fs.open(self.path(uri), "wb")
            try:
                frame.lazy().sink_parquet(out)
            except BaseException:
                # Closing would complete the upload with what was written so far: cancel it.
                with contextlib.suppress(Exception):
                    out.discard()
                out.closed = True
                raise
            out.close()

    def prepare_target(self, uri: str) -> None:
        """Nothing: GCS has no directories (and a service account limited to its
        target's names may not list or create anything else)."""


class LightGcsStorage(GcsStorage):
    """:class:`GcsStorage` on the light client (:mod:`glacier_gcp.light`) even where gcsfs is installed.

    What ``gs://`` is inside a function of another cloud; usable anywhere (a scheme
    registered with it, or a test of that path).
    """

    def make_filesystem(self) -> fsspec.AbstractFileSystem:
        """The light client, never gcsfs."""
        return self.make_light_filesystem()
