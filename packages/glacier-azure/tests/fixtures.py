"""glacier-azure's fixtures for the contract suites: Blob Storage in Azurite.

Buckets are blobs of fresh Azurite containers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from glacier import Bucket, Provider
from glacier.config import AzureConfig, AzureFunctionConfig
from glacier.testing import ProviderFixtures


class AzureFixtures(ProviderFixtures):
    """glacier-azure against Azurite on 127.0.0.1."""

    plugin = "azure"
    step_timeout = 3

    @pytest.fixture
    def make_bucket(self, azure_config: AzureConfig, container: str) -> Callable[[str], Bucket]:
        provider = Provider(config=azure_config)
        return lambda path: provider.bucket(bucket=container, path=path)

    @pytest.fixture
    def configs(self) -> list[Any]:
        return [
            AzureConfig(storage_account="mylake"),
            AzureConfig(storage_account="devstoreaccount1", resource_group="data", location="westeurope", subscription_id="00000000-0000-0000-0000-000000000000",
                        endpoint_url="http://127.0.0.1:9/devstoreaccount1", service_endpoints={"queue": "http://127.0.0.1:8/devstoreaccount1"}),
            AzureFunctionConfig(),
            AzureFunctionConfig(memory=4096, timeout=14_400, max_instances=1000, runtime="3.11", environment={"A": "b"}, max_dequeue_count=5, log_retention_days=90),
        ]  # fmt: skip
