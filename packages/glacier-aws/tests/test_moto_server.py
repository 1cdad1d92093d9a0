"""glacier_aws.testing.moto_server: a moto server of its own, answering when the block starts, gone after."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from glacier_aws.testing.moto_server import moto_server


def s3(endpoint: str, key: str = "testing", secret: str = "testing"):  # noqa: ANN201
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret)


def test_the_server_answers_inside_the_block_and_its_process_is_gone_after(tmp_path: Path) -> None:
    with moto_server(log_dir=tmp_path) as server:
        assert server.endpoint.startswith("http://127.0.0.1:")
        assert server.admin == {}
        s3(server.endpoint).create_bucket(Bucket="lake")  # no wait: it answers already
        assert [b["Name"] for b in s3(server.endpoint).list_buckets()["Buckets"]] == ["lake"]
        os.kill(server.pid, 0)
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
    assert (tmp_path / "moto.log").exists()


def test_two_servers_hold_separate_state(tmp_path: Path) -> None:
    with moto_server(log_dir=tmp_path / "a") as a, moto_server(log_dir=tmp_path / "b") as b:
        assert a.endpoint != b.endpoint and a.pid != b.pid
        s3(a.endpoint).create_bucket(Bucket="only-in-a")
        assert s3(b.endpoint).list_buckets()["Buckets"] == []


def test_an_enforcing_server_refuses_unknown_keys_and_serves_its_administrator(tmp_path: Path) -> None:
    with moto_server(enforce_iam=True, log_dir=tmp_path) as server:
        with pytest.raises(ClientError, match="InvalidAccessKeyId"):
            s3(server.endpoint).list_buckets()
        admin = s3(server.endpoint, server.admin["AWS_ACCESS_KEY_ID"], server.admin["AWS_SECRET_ACCESS_KEY"])
        admin.create_bucket(Bucket="lake")
        assert [b["Name"] for b in admin.list_buckets()["Buckets"]] == ["lake"]
