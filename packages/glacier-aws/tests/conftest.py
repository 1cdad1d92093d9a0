"""S3 through moto's server on 127.0.0.1, started for the session and stopped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import logging

import pytest

from glacier import Provider
from glacier.config import AwsConfig

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request

# Never reach real AWS: fixed fake credentials, and no instance-metadata lookups.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 (and more) as a real HTTP server on 127.0.0.1, any free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_config(moto_endpoint: str) -> AwsConfig:
    """An AwsConfig pointed at moto."""
    return AwsConfig(region="us-east-1", endpoint_url=moto_endpoint)


@pytest.fixture
def s3_bucket(aws_config: AwsConfig) -> str:
    """A fresh, empty S3 bucket in moto."""
    import boto3

    name = f"glacier-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=aws_config.endpoint_url, region_name=aws_config.region).create_bucket(Bucket=name)
    return name


@pytest.fixture
def aws(aws_config: AwsConfig) -> Provider:
    """An AWS provider against moto."""
    return Provider(config=aws_config)
