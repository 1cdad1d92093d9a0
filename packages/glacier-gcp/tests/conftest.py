"""GCS through fake-gcs-server on 127.0.0.1, started for the session and stopped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from glacier import Provider
from glacier.config import GcpConfig
from glacier_gcp.testing.gcs_server import FakeGcsServer

#: Never reach Google: the metadata server's addresses point at a closed port, and no
#: credentials file of the ADC chain is found.
OFFLINE_GCP = {
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_ROOT": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    "NO_GCE_CHECK": "True",
}


@pytest.fixture(scope="session", autouse=True)
def _offline_gcp_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """For the gcp tests' session only; os.environ is restored after."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE_GCP.items():
            mp.setenv(key, value)
        mp.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        mp.delenv("STORAGE_EMULATOR_HOST", raising=False)
        mp.setenv("CLOUDSDK_CONFIG", str(tmp_path_factory.mktemp("gcloud")))  # no well-known ADC file
        yield


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[FakeGcsServer]:
    """fake-gcs-server as a real HTTP server on 127.0.0.1, any free port."""
    with FakeGcsServer() as server:
        yield server


@pytest.fixture
def gcp_config(gcs_server: FakeGcsServer) -> GcpConfig:
    """A GcpConfig pointed at fake-gcs-server."""
    return GcpConfig(project=gcs_server.project, region="europe-west1", endpoint_url=gcs_server.endpoint)


@pytest.fixture
def gcs_bucket(gcs_server: FakeGcsServer) -> str:
    """A fresh, empty GCS bucket in fake-gcs-server."""
    name = f"glacier-test-{uuid.uuid4().hex[:12]}"
    gcs_server.create_bucket(name)
    return name


@pytest.fixture
def gcp(gcp_config: GcpConfig) -> Provider:
    """A Google Cloud provider against fake-gcs-server."""
    return Provider(config=gcp_config)
