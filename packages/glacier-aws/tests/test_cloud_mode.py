"""Cloud mode end to end over real protocols on 127.0.0.1.

S3 is moto's server; Lambda is LambdaService, which serves the Invoke API boto3
calls and runs the *built artifact's* handler in the real awslambdaric runtime
client. The flow is the user's: generate, "deploy" the artifact, run, compare.
"""

from __future__ import annotations

import os
import platform
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import Provider, StepStatus
from glacier.cli import load_pipeline
from glacier.config import AwsConfig, LambdaConfig
from glacier.errors import StepTimeoutError, TaskFailedError
from glacier.generate import DeploymentNotFoundError
from glacier.testing import ExecutorContract, sample_frame, tasks
from glacier_aws.storage import polars_storage_options
from glacier_aws.testing.lambda_service import LambdaService

RUNTIME = f"python3.{sys.version_info.minor}"  # the artifact must run on this interpreter
ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"

PIPELINE_FILE = '''
import os
import time
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, LambdaConfig

config = AwsConfig(region="us-east-1", endpoint_url=os.environ["MOTO"], service_endpoints={{"lambda": os.environ["LAMBDA"]}})
provider = Provider(config=config)
local_exec = provider.local()
lambda_exec = provider.serverless(config=LambdaConfig(memory=1024, timeout=60, runtime="{runtime}", architecture="{arch}"))
short_lambda = provider.serverless(config=LambdaConfig(memory=512, timeout=3, runtime="{runtime}", architecture="{arch}"))
bucket = os.environ["DATA_BUCKET"]
raw = provider.bucket(bucket=bucket, path="raw/data.parquet")
step1 = provider.bucket(bucket=bucket, path="intermediate/step1.parquet")
step2 = provider.bucket(bucket=bucket, path="intermediate/step2.parquet")
output = provider.bucket(bucket=bucket, path="output/result.parquet")


@local_exec.task()
def extract(df):
    return df.filter(pl.col("value").is_not_null())


@lambda_exec.task()
def transform(df):
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@lambda_exec.task()
def aggregate(df):
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


@lambda_exec.task()
def broken(df):
    raise ValueError("bad data in " + os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "?"))


@short_lambda.task()
def slow(df):
    time.sleep(30)
    return df


etl = Pipeline(name="etl").source(raw).transform(extract).to(step1).transform(transform).to(step2).transform(aggregate).to(output)
failing = Pipeline(name="failing").source(raw).transform(broken).to(provider.bucket(bucket=bucket, path="broken.parquet"))
too_slow = Pipeline(name="too_slow").source(raw).transform(slow).to(provider.bucket(bucket=bucket, path="slow.parquet"))
'''


@pytest.fixture(scope="module")
def lambda_service() -> Iterator[LambdaService]:
    with LambdaService() as service:
        yield service


@pytest.fixture
def project(tmp_path: Path, moto_endpoint: str, lambda_service: LambdaService, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The pipeline file, loaded like the CLI loads it, with sample data in moto's S3."""
    monkeypatch.setenv("MOTO", moto_endpoint)
    monkeypatch.setenv("LAMBDA", lambda_service.endpoint_url)
    monkeypatch.setenv("DATA_BUCKET", s3_bucket)
    file = tmp_path / "cloud_etl.py"
    file.write_text(textwrap.dedent(PIPELINE_FILE.format(runtime=RUNTIME, arch=ARCH)))
    raw = sample_frame(20_000)
    raw.write_parquet(f"s3://{s3_bucket}/raw/data.parquet", storage_options=polars_storage_options(AwsConfig(endpoint_url=moto_endpoint)))
    return file, raw


def deploy(result: Any, service: LambdaService, moto_endpoint: str) -> None:
    """What `terraform apply` does for the functions: unpack the artifact and create each function."""
    for task, entry in result.manifest["functions"].items():
        zip_path = next(p for p in result.files if p.suffix == ".zip" and entry["runtime"] in p.name and entry["architecture"] in p.name)
        code = zip_path.parent / f"unpacked-{zip_path.stem}"
        if not code.exists():
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(code)
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
        timeout = 3 if task == "slow" else 60
        service.deploy(entry["function_name"], code, "glacier_aws.handler.handler", environment=env, timeout=timeout)


def test_generate_deploy_and_run_the_seed_pipeline_in_cloud_mode(project: Any, tmp_path: Path, lambda_service: LambdaService, moto_endpoint: str, s3_bucket: str) -> None:
    file, raw = project
    etl = load_pipeline(f"{file}:etl")
    generated = etl.run(mode="generate", out=tmp_path / "infra")
    assert set(generated.manifest["functions"]) == {"transform", "aggregate"}
    assert (tmp_path / "infra" / "main.tf").exists()
    deploy(generated, lambda_service, moto_endpoint)

    result = etl.run(mode="cloud")
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    assert [result[s].executor for s in ("extract", "transform", "aggregate")] == ["local", "lambda", "lambda"]
    assert lambda_service.invocations(generated.manifest["functions"]["transform"]["function_name"]) == 1
    got = pl.read_parquet(f"s3://{s3_bucket}/output/result.parquet", storage_options=polars_storage_options(AwsConfig(endpoint_url=moto_endpoint)))
    expected = raw.filter(pl.col("value").is_not_null()).group_by("category").agg(pl.col("value").sum()).sort("category")
    assert_frame_equal(got, expected)
    assert result["transform"].rows == raw["value"].is_not_null().sum()


def generate_deploy_run(project: Any, name: str, out: Path, service: LambdaService, moto_endpoint: str) -> Any:
    """The user's flow for one pipeline of the file: generate, deploy, run in cloud mode."""
    pipeline = load_pipeline(f"{project[0]}:{name}")
    deploy(pipeline.run(mode="generate", out=out), service, moto_endpoint)
    return pipeline.run(mode="cloud")


def test_a_handler_error_comes_back_as_a_glacier_error_naming_the_step(project: Any, tmp_path: Path, lambda_service: LambdaService, moto_endpoint: str) -> None:
    result = generate_deploy_run(project, "failing", tmp_path / "infra", lambda_service, moto_endpoint)
    step = result["broken"]
    assert step.status is StepStatus.FAILED
    assert isinstance(step.error, TaskFailedError)
    assert "Step 'broken' failed" in str(step.error) and "ValueError: bad data in failing-broken" in str(step.error)
    assert "(in Lambda function 'failing-broken')" in str(step.error) and "/aws/lambda/failing-broken" in str(step.error)


def test_a_lambda_timeout_comes_back_as_a_timed_out_step(project: Any, tmp_path: Path, lambda_service: LambdaService, moto_endpoint: str) -> None:
    result = generate_deploy_run(project, "too_slow", tmp_path / "infra", lambda_service, moto_endpoint)
    step = result["slow"]
    assert step.status is StepStatus.TIMED_OUT
    assert isinstance(step.error, StepTimeoutError)
    assert "'too-slow-slow'" in str(step.error) and "timeout of 3s" in str(step.error)


def test_cloud_mode_without_a_deployment_says_what_to_do(project: Any, tmp_path: Path) -> None:
    file, _ = project
    etl = load_pipeline(f"{file}:etl")
    with pytest.raises(DeploymentNotFoundError, match=r"(?s)No deployment of pipeline 'etl'.*terraform.*apply"):
        etl.run(mode="cloud")


class TestLambdaExecutor(ExecutorContract):
    """The contract suite, run through the real Lambda protocols."""

    @pytest.fixture
    def make_bucket(self, aws_config: AwsConfig, s3_bucket: str):  # noqa: ANN201
        provider = Provider(config=aws_config)
        return lambda path: provider.bucket(bucket=s3_bucket, path=path)

    @pytest.fixture
    def executor(self, aws_config: AwsConfig, lambda_service: LambdaService):  # noqa: ANN201
        config = AwsConfig(region=aws_config.region, endpoint_url=aws_config.endpoint_url, service_endpoints={"lambda": lambda_service.endpoint_url})
        return Provider(config=config).serverless(config=LambdaConfig(timeout=60, runtime=RUNTIME, architecture=ARCH))

    @pytest.fixture
    def deployment(self, executor: Any, lambda_service: LambdaService, tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> dict[str, Any]:
        # One function per contract task, deployed from a real artifact build.
        from glacier_aws.artifact import build_artifact

        out = tmp_path_factory.mktemp("contract-artifact")
        artifact = build_artifact([], executor.config, out)
        code = out / "code"
        with zipfile.ZipFile(artifact.path) as archive:
            archive.extractall(code)
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
        functions = {}
        for name in tasks.__all__:
            function = f"contract-{name.replace('_', '-')}"
            lambda_service.deploy(function, code, "glacier_aws.handler.handler", environment=env, timeout=60)
            functions[name] = {"function_name": function, "module": "glacier.testing.tasks", "qualname": name}
        return {"functions": functions}
