"""glacier-azure: run Glacier pipelines on Azure.

Adds ``AzureConfig`` and ``AzureFunctionConfig`` to :mod:`glacier.config`, ``az://``
(and ``abfs://``, ``abfss://``) buckets, an Azure Functions executor
(``provider.serverless(config=AzureFunctionConfig(...))``) and Terraform generation
for Storage, Flex Consumption function apps and their identities. Heavy SDKs
(azure-storage, adlfs, azure-identity) are imported on first use.
"""

from glacier_azure.config import AzureConfig, AzureFunctionConfig

__all__ = ["AzureConfig", "AzureFunctionConfig"]
