"""Least privilege enforced at run time, not only read: each Lambda function runs with the
credentials of its own role, created in a moto server that enforces IAM from the generated
policy (``glacier_aws.testing.roles.assume_function_roles``). A step that stays within its
grants runs; a step that touches an object beyond them is refused by S3 itself, and the
refusal comes back as a Glacier error naming the step and the object.
"""

from __future__ import annotations

import platform
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glacier import StepStatus
from glacier.cli import load_pipeline
from glacier.config import AwsConfig
from glacier.testing import sample_frame
from glacier_aws.storage import polars_storage_options
from glacier_aws.testing.lambda_service import LambdaService
from glacier_aws.testing.roles import assume_function_roles, function_policies

RUNTIME = f"python3.{sys.version_info.minor}"
ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"

PIPELINE_FILE = '''
import os
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, LambdaConfig
from glacier_aws.storage import polars_storage_options

config = AwsConfig(region="us-east-1", endpoint_url=os.environ["MOTO"], service_endpoints={{"lambda": os.environ["LAMBDA"]}})
provider = Provider(config=config)
on_lambda = provider.serverless(config=LambdaConfig(memory=512, timeout=60, runtime="{runtime}", architecture="{arch}"))
bucket = os.environ["DATA_BUCKET"]
raw = provider.bucket(bucket=bucket, path="raw/data.parquet")


@on_lambda.task()
def within_grants(df):
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@on_lambda.task()
def reads_another_key(df):
    # Beyond its grants: the step's sources are raw/data.parquet only.
    return pl.read_parquet(f"s3://{{bucket}}/secret/other.parquet", storage_options=polars_storage_options(config))


@on_lambda.task()
def writes_outside_its_target(df):
    df.collect().write_parquet(f"s3://{{bucket}}/elsewhere/out.parquet", storage_options=polars_storage_options(config))
    return df


allowed = Pipeline(name="allowed").source(raw).transform(within_grants).to(provider.bucket(bucket=bucket, path="out/doubled.parquet"))
reading = Pipeline(name="reading").source(raw).transform(reads_another_key).to(provider.bucket(bucket=bucket, path="out/read.parquet"))
writing = Pipeline(name="writing").source(raw).transform(writes_outside_its_target).to(provider.bucket(bucket=bucket, path="out/written.parquet"))
'''


@pytest.fixture(scope="module")
def lambda_service() -> Iterator[LambdaService]:
    with LambdaService() as service:
        yield service


@pytest.fixture
def project(tmp_path: Path, enforcing_moto: Any, lambda_service: LambdaService, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The pipeline file and a bucket in the enforcing moto; the test itself acts as an administrator."""
    for key, value in enforcing_moto.admin.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    bucket = f"glacier-iam-{uuid.uuid4().hex[:12]}"
    admin_s3(enforcing_moto).create_bucket(Bucket=bucket)
    monkeypatch.setenv("MOTO", enforcing_moto.endpoint)
    monkeypatch.setenv("LAMBDA", lambda_service.endpoint_url)
    monkeypatch.setenv("DATA_BUCKET", bucket)
    options = polars_storage_options(AwsConfig(endpoint_url=enforcing_moto.endpoint))
    sample_frame(500).write_parquet(f"s3://{bucket}/raw/data.parquet", storage_options=options)
    sample_frame(5).write_parquet(f"s3://{bucket}/secret/other.parquet", storage_options=options)
    file = tmp_path / "iam_etl.py"
    file.write_text(textwrap.dedent(PIPELINE_FILE.format(runtime=RUNTIME, arch=ARCH)))
    return file, bucket, options


def admin_s3(enforcing_moto: Any) -> Any:
    """An S3 client with the administrator's keys (boto3's default session caches the first credentials it saw)."""
    import boto3

    keys = enforcing_moto.admin
    return boto3.client("s3", endpoint_url=enforcing_moto.endpoint, region_name="us-east-1", aws_access_key_id=keys["AWS_ACCESS_KEY_ID"], aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])


def run_with_own_roles(project: Any, name: str, out: Path, service: LambdaService, enforcing_moto: Any) -> Any:
    pipeline = load_pipeline(f"{project[0]}:{name}")
    generated = pipeline.run(mode="generate", out=out)
    service.deploy_terraform(generated.out, credentials=assume_function_roles(generated.out, enforcing_moto.endpoint))
    return pipeline.run(mode="cloud")


def test_the_server_enforces_iam(enforcing_moto: Any) -> None:
    import boto3
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        boto3.client("s3", endpoint_url=enforcing_moto.endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing").list_buckets()


def test_the_policy_in_force_is_the_generated_one(project: Any, tmp_path: Path) -> None:
    file, bucket, _ = project
    generated = load_pipeline(f"{file}:reading").run(mode="generate", out=tmp_path / "infra")
    statements = function_policies(generated.out)["reading-reads-another-key"]["Statement"]
    reads = next(s for s in statements if s["Action"] == ["s3:GetObject"])["Resource"]
    assert f"arn:aws:s3:::{bucket}/raw/data.parquet" in reads
    assert not any("secret" in r for s in statements for r in s["Resource"])


def test_a_step_within_its_grants_runs_with_its_own_role(project: Any, tmp_path: Path, lambda_service: LambdaService, enforcing_moto: Any) -> None:
    file, bucket, options = project
    result = run_with_own_roles(project, "allowed", tmp_path / "infra", lambda_service, enforcing_moto)
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    assert pl.read_parquet(f"s3://{bucket}/out/doubled.parquet", storage_options=options).height == 500


def test_a_step_reading_beyond_its_grants_is_refused_naming_step_and_uri(project: Any, tmp_path: Path, lambda_service: LambdaService, enforcing_moto: Any) -> None:
    file, bucket, _ = project
    result = run_with_own_roles(project, "reading", tmp_path / "infra", lambda_service, enforcing_moto)
    step = result["reads_another_key"]
    assert step.status is StepStatus.FAILED
    message = str(step.error)
    assert "Step 'reads_another_key' failed" in message
    assert "AccessDenied" in message or "Access Denied" in message or "403" in message, message
    assert f"{bucket}/secret/other.parquet" in message, message


def test_a_step_writing_outside_its_target_is_refused_and_writes_nothing(project: Any, tmp_path: Path, lambda_service: LambdaService, enforcing_moto: Any) -> None:
    file, bucket, _ = project
    result = run_with_own_roles(project, "writing", tmp_path / "infra", lambda_service, enforcing_moto)
    step = result["writes_outside_its_target"]
    assert step.status is StepStatus.FAILED
    message = str(step.error)
    assert "Step 'writes_outside_its_target' failed" in message
    assert "AccessDenied" in message or "Access Denied" in message or "403" in message, message
    assert f"{bucket}/elsewhere/out.parquet" in message, message
    listed = admin_s3(enforcing_moto).list_objects_v2(Bucket=bucket, Prefix="elsewhere/")
    assert listed.get("KeyCount", 0) == 0
