"""glacier-azure's plugin module (entry point ``glacier: azure``). Light: no Azure SDK or adlfs here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glacier import hookimpl
from glacier.plugins.backend import ProviderBackend
from glacier.plugins.registry import CodegenTarget, ExecutorKind, Scheme

from glacier_azure.config import AzureConfig, AzureFunctionConfig

if TYPE_CHECKING:
    from collections.abc import MutableMapping

#: What a function on another cloud needs to use ``az://``: adlfs (with azure-storage-blob)
#: and azure-identity, as :class:`glacier_azure.storage.AzureBlobStorage` imports them.
FUNCTION_REQUIREMENTS = ("adlfs", "azure-identity")


@hookimpl
def glacier_configs() -> list[type]:
    """``AzureConfig`` and ``AzureFunctionConfig``."""
    return [AzureConfig, AzureFunctionConfig]


@hookimpl
def glacier_provider_for_config(config: Any) -> ProviderBackend | None:
    """The Azure provider for an ``AzureConfig``."""
    if isinstance(config, AzureConfig):
        from glacier_azure.backend import AzureBackend

        return AzureBackend(config)
    return None


@hookimpl
def glacier_storage_schemes() -> list[Scheme]:
    """``az://`` and the ADLS Gen2 forms ``abfs://`` and ``abfss://``; a function of another cloud that touches them carries adlfs and azure-identity."""
    return [
        Scheme(name, "glacier_azure.storage:AzureBlobStorage", package="glacier-azure", provider="azure", function_requirements=FUNCTION_REQUIREMENTS)
        for name in ("az", "abfs", "abfss")
    ]


@hookimpl
def glacier_executor_kinds() -> list[ExecutorKind]:
    """The Azure Functions executor, chosen by ``AzureFunctionConfig``."""
    return [ExecutorKind("azure-functions", "glacier_azure.executor:AzureFunctionsExecutor", config="glacier_azure.config:AzureFunctionConfig", provider="azure")]


@hookimpl
def glacier_codegen_targets() -> list[CodegenTarget]:
    """Terraform (azurerm) for storage accounts, queues, Flex Consumption function apps and their identities."""
    return [CodegenTarget("terraform-azure", "azure", "glacier_azure.infra.terraform:generate")]


@hookimpl
def glacier_identity_token(audience: str) -> str | None:
    """A token of this function app's managed identity (only inside Azure Functions)."""
    from glacier_azure.identity import identity_token

    return identity_token(audience)


@hookimpl
def glacier_configure_credentials(environ: MutableMapping[str, str]) -> None:
    """A federated token file for ``AZURE_CLIENT_ID`` (a function of another cloud)."""
    from glacier_azure.identity import configure_credentials

    configure_credentials(environ)
