"""glacier-gcp's plugin module (entry point ``glacier: gcp``). Light: no gcsfs or google-auth here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glacier import hookimpl
from glacier.plugins.backend import ProviderBackend
from glacier.plugins.registry import CodegenTarget, ExecutorKind, Scheme

from glacier_gcp.config import CloudFunctionConfig, GcpConfig

if TYPE_CHECKING:
    from collections.abc import MutableMapping

#: What a function on another cloud needs to use ``gs://``: google-auth and requests, for
#: :mod:`glacier_gcp.light` (gcsfs, with grpcio and protobuf, would not fit Lambda's 250 MB
#: beside polars and s3fs; without it installed, ``GcsStorage`` uses the light client).
FUNCTION_REQUIREMENTS = ("google-auth", "requests")


@hookimpl
def glacier_configs() -> list[type]:
    """``GcpConfig`` and ``CloudFunctionConfig``."""
    return [GcpConfig, CloudFunctionConfig]


@hookimpl
def glacier_provider_for_config(config: Any) -> ProviderBackend | None:
    """The Google Cloud provider for a ``GcpConfig``."""
    if isinstance(config, GcpConfig):
        from glacier_gcp.backend import GcpBackend

        return GcpBackend(config)
    return None


@hookimpl
def glacier_storage_schemes() -> list[Scheme]:
    """``gs://`` (and ``gcs://``, as fsspec also names it); a function of another cloud that touches it carries google-auth and requests."""
    return [
        Scheme(name, "glacier_gcp.storage:GcsStorage", package="glacier-gcp", provider="gcp", function_requirements=FUNCTION_REQUIREMENTS)
        for name in ("gs", "gcs")
    ]


@hookimpl
def glacier_executor_kinds() -> list[ExecutorKind]:
    """The Cloud Functions executor, chosen by ``CloudFunctionConfig``."""
    return [ExecutorKind("cloudfunction", "glacier_gcp.executor:CloudFunctionExecutor", config="glacier_gcp.config:CloudFunctionConfig", provider="gcp")]


@hookimpl
def glacier_codegen_targets() -> list[CodegenTarget]:
    """Terraform for GCS buckets, Cloud Functions (gen2), their service accounts and invoker bindings."""
    return [CodegenTarget("terraform-gcp", "gcp", "glacier_gcp.infra.terraform:generate")]


@hookimpl
def glacier_identity_token(audience: str) -> str | None:
    """An ID token of this Cloud Function's service account, from the metadata server (only inside Cloud Functions)."""
    from glacier_gcp.identity import identity_token

    return identity_token(audience)


@hookimpl
def glacier_configure_credentials(environ: MutableMapping[str, str]) -> None:
    """``GLACIER_GCP_CREDENTIAL_CONFIG`` written to a private file named by ``GOOGLE_APPLICATION_CREDENTIALS`` (a function of another cloud)."""
    from glacier_gcp.identity import configure_credentials

    configure_credentials(environ)
