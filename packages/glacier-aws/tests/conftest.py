"""S3 through moto's server on 127.0.0.1, started for the session and stopped after."""

from __future__ import annotations

import platform
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from glacier import Provider
from glacier.config import AwsConfig
from glacier_aws.testing.lambda_service import LambdaService
from glacier_aws.testing.moto_server import MotoServer, moto_server

#: Never reach real AWS: fixed fake credentials, and no instance-metadata lookups.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session", autouse=True)
def _fake_aws_environment() -> Iterator[None]:
    """The fake credentials for the aws tests' session only; os.environ is restored after."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAKE_AWS.items():
            mp.setenv(key, value)
        yield


@pytest.fixture(scope="session")
def enforcing_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's server checking every request against IAM; ``.admin`` holds an administrator's keys."""
    with moto_server(enforce_iam=True, log_dir=tmp_path_factory.mktemp("moto-iam")) as server:
        yield server


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 (and more) as a real HTTP server on 127.0.0.1, any free port; any key is accepted."""
    with moto_server(log_dir=tmp_path_factory.mktemp("moto")) as server:
        yield server.endpoint


@pytest.fixture(scope="module")
def lambda_service() -> Iterator[LambdaService]:
    """The Lambda Invoke API on 127.0.0.1, one per test module; functions run in awslambdaric."""
    with LambdaService() as service:
        yield service


@pytest.fixture(scope="session")
def artifact_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Lambda artifact (Glacier and its dependencies, no user module) for this interpreter, unzipped."""
    from glacier.config import LambdaConfig
    from glacier_aws.infra.artifact import build_artifact

    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    out = tmp_path_factory.mktemp("artifact")
    artifact = build_artifact([], LambdaConfig(runtime=f"python3.{sys.version_info.minor}", architecture=arch), out)
    with zipfile.ZipFile(artifact.path) as archive:
        archive.extractall(out / "code")
    return out / "code"


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
