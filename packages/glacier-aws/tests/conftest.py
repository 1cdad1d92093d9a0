"""S3 through moto's server on 127.0.0.1, started for the session and stopped after."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import logging

import pytest

from glacier import Provider
from glacier.config import AwsConfig

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request

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


@dataclass
class EnforcingMoto:
    """A moto server that enforces IAM, and an administrator's credentials for the test's own calls."""

    endpoint: str
    admin: dict[str, str]


@pytest.fixture(scope="session")
def enforcing_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnforcingMoto]:
    """moto's server in a process of its own (IAM enforcement is process-wide in moto),
    with every request checked against IAM once an admin user exists."""
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is not None:  # the port was taken between choosing it and moto binding it
            raise RuntimeError(f"moto_server exited with {proc.returncode} before serving on {endpoint}")
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}), timeout=10).close()
        yield EnforcingMoto(endpoint, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


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
