"""The Azure provider's backend: ``az://`` buckets (containers of one storage account) and Azure Functions."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from glacier.errors import PipelineDefinitionError
from glacier.plugins.backend import ProviderBackend

from glacier_azure.config import AzureConfig, AzureFunctionConfig

__all__ = ["AzureBackend"]

_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]")


class AzureBackend(ProviderBackend):
    """Serves :class:`~glacier_azure.config.AzureConfig`."""

    name: ClassVar[str] = "azure"
    scheme: ClassVar[str] = "az"
    config: AzureConfig

    def bucket_uri(self, bucket: str, path: str) -> str:
        """``az://container/path``: ``bucket`` is a container of the config's storage account.

        Azure's container rules are checked here: 3 to 63 lowercase letters, digits
        and single hyphens, starting and ending with a letter or digit.

        Examples
        --------
        >>> AzureBackend(AzureConfig(storage_account="mylake")).bucket_uri("data-lake", "raw/data.parquet")
        'az://data-lake/raw/data.parquet'
        """
        if not 3 <= len(bucket) <= 63 or not _CONTAINER.fullmatch(bucket):
            msg = (
                f"{bucket!r} is not an Azure container name: 3 to 63 lowercase letters, digits and single hyphens, "
                "starting and ending with a letter or a digit.\n\nHint: e.g. bucket=\"data-lake\""
            )
            raise PipelineDefinitionError(msg)
        return f"az://{bucket}/{path.lstrip('/')}"

    def default_serverless_config(self) -> Any:
        """A Flex Consumption function with the default settings."""
        return AzureFunctionConfig()
