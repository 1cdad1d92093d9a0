"""Least privilege enforced at run time, not only read: each Lambda function runs with the
credentials of its own role, created in a moto server that enforces IAM from the generated
policy (``glacier_aws.testing.roles.assume_function_roles``). A step that stays within its
grants runs; a step that touches an object beyond them is refused by S3 itself, and the
refusal comes back as a Glacier error naming the step and the object.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glacier import StepStatus
from glacier.config import AwsConfig
from glacier.testing import sample_frame
from glacier_aws.storage import polars_storage_options
from glacier_aws.testing.lambda_service import LambdaService
from glacier_aws.testing.moto_server import MotoServer
from glacier_aws.testing.roles import assume_function_roles, function_policies

from .fixtures import CloudProject, cloud_project

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


@pytest.fixture
def project(tmp_path: Path, enforcing_moto: MotoServer, lambda_service: LambdaService, monkeypatch: pytest.MonkeyPatch) -> CloudProject:
    """The pipeline file and a bucket in the enforcing moto; the test itself acts as an administrator."""
    for key, value in enforcing_moto.admin.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    bucket = f"glacier-iam-{uuid.uuid4().hex[:12]}"
    admin_s3(enforcing_moto).create_bucket(Bucket=bucket)
    options = polars_storage_options(AwsConfig(endpoint_url=enforcing_moto.endpoint))
    sample_frame(500).write_parquet(f"s3://{bucket}/raw/data.parquet", storage_options=options)
    sample_frame(5).write_parquet(f"s3://{bucket}/secret/other.parquet", storage_options=options)
    # No shared keys: each function gets its own role's at deploy time.
    return cloud_project(PIPELINE_FILE, tmp_path, monkeypatch, moto=enforcing_moto.endpoint, service=lambda_service,
                         bucket=bucket, module="iam_etl", credentials={})


def admin_s3(enforcing_moto: MotoServer) -> Any:
    """An S3 client with the administrator's keys (boto3's default session caches the first credentials it saw)."""
    import boto3

    keys = enforcing_moto.admin
    return boto3.client("s3", endpoint_url=enforcing_moto.endpoint, region_name="us-east-1", aws_access_key_id=keys["AWS_ACCESS_KEY_ID"], aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])


def run_with_own_roles(project: CloudProject, name: str, out: Path) -> Any:
    """Generate, deploy with each function holding its own role's credentials, run in cloud mode."""
    return project.run(name, out, roles=lambda generated: assume_function_roles(generated, project.moto))


def test_the_server_enforces_iam(enforcing_moto: MotoServer) -> None:
    import boto3
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        boto3.client("s3", endpoint_url=enforcing_moto.endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing").list_buckets()


def test_the_policy_in_force_is_the_generated_one(project: CloudProject, tmp_path: Path) -> None:
    generated = project.generate("reading", tmp_path / "infra")
    statements = function_policies(generated.out)["reading-reads-another-key"]["Statement"]
    reads = next(s for s in statements if s["Action"] == ["s3:GetObject"])["Resource"]
    assert f"arn:aws:s3:::{project.bucket}/raw/data.parquet" in reads
    assert not any("secret" in r for s in statements for r in s["Resource"])


def test_a_step_within_its_grants_runs_with_its_own_role(project: CloudProject, tmp_path: Path, enforcing_moto: MotoServer) -> None:
    result = run_with_own_roles(project, "allowed", tmp_path / "infra")
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    options = polars_storage_options(AwsConfig(endpoint_url=enforcing_moto.endpoint))
    assert pl.read_parquet(f"s3://{project.bucket}/out/doubled.parquet", storage_options=options).height == 500


@pytest.mark.parametrize(("pipeline", "step", "key", "target"), [
    pytest.param("reading", "reads_another_key", "secret/other.parquet", "out/read.parquet", id="reading-another-key"),
    pytest.param("writing", "writes_outside_its_target", "elsewhere/out.parquet", "out/written.parquet", id="writing-outside-its-target"),
])
def test_a_step_beyond_its_grants_is_refused_naming_step_and_uri_and_writes_nothing(
    project: CloudProject, tmp_path: Path, enforcing_moto: MotoServer, pipeline: str, step: str, key: str, target: str
) -> None:
    result = run_with_own_roles(project, pipeline, tmp_path / "infra")
    outcome = result[step]
    assert outcome.status is StepStatus.FAILED
    message = str(outcome.error)
    assert f"Step '{step}' failed" in message
    assert "AccessDenied" in message or "Access Denied" in message or "403" in message, message
    assert f"{project.bucket}/{key}" in message, message
    s3 = admin_s3(enforcing_moto)
    assert s3.list_objects_v2(Bucket=project.bucket, Prefix="elsewhere/").get("KeyCount", 0) == 0
    assert s3.list_objects_v2(Bucket=project.bucket, Prefix=target).get("KeyCount", 0) == 0
