"""Azure Blob and Queue through Azurite on 127.0.0.1, started for the session and stopped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from glacier import Provider
from glacier.config import AzureConfig
from glacier_azure.testing.azurite import ACCOUNT_KEY, Azurite

#: Never reach real Azure or a metadata server: Azurite's well-known key, no connection string.
FAKE_AZURE = {
    "AZURE_STORAGE_KEY": ACCOUNT_KEY,
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_ROOT": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}


@pytest.fixture(scope="session", autouse=True)
def _fake_azure_environment() -> Iterator[None]:
    """Azurite's key for the azure tests' session only; os.environ is restored after."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAKE_AZURE.items():
            mp.setenv(key, value)
        mp.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
        yield


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's Blob and Queue services in memory, on free ports of 127.0.0.1."""
    with Azurite(log_dir=tmp_path_factory.mktemp("azurite")) as service:
        yield service


@pytest.fixture
def azure_config(azurite: Azurite) -> AzureConfig:
    """An AzureConfig pointed at Azurite."""
    return azurite.config()


@pytest.fixture
def container(azurite: Azurite) -> str:
    """A fresh, empty container in Azurite."""
    name = f"glacier-test-{uuid.uuid4().hex[:12]}"
    azurite.create_container(name)
    return name


@pytest.fixture
def azure(azure_config: AzureConfig) -> Provider:
    """An Azure provider against Azurite."""
    return Provider(config=azure_config)
