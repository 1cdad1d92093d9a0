"""glacier-gcp's fixtures for the contract suites: GCS in fake-gcs-server.

Buckets are fresh fake-gcs-server buckets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from glacier import Bucket, Provider
from glacier.config import CloudFunctionConfig, GcpConfig
from glacier.testing import ProviderFixtures


class GcpFixtures(ProviderFixtures):
    """glacier-gcp against servers on 127.0.0.1."""

    plugin = "gcp"
    step_timeout = 2

    @pytest.fixture
    def make_bucket(self, gcp_config: GcpConfig, gcs_bucket: str) -> Callable[[str], Bucket]:
        provider = Provider(config=gcp_config)
        return lambda path: provider.bucket(bucket=gcs_bucket, path=path)

    @pytest.fixture
    def configs(self) -> list[Any]:
        return [
            GcpConfig(),
            GcpConfig(project="p", region="europe-west1", endpoint_url="http://127.0.0.1:9", service_endpoints={"storage": "http://127.0.0.1:8"}),
            CloudFunctionConfig(),
            CloudFunctionConfig(memory=16_384, cpu=4, timeout=3600, max_instances=3, min_instances=1, runtime="python311", environment={"A": "b"}),
        ]
