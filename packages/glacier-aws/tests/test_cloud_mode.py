"""Cloud mode end to end over real protocols on 127.0.0.1.

S3 is moto's server; Lambda is LambdaService, which serves the Invoke API boto3
calls and runs the *built artifact's* handler in the real awslambdaric runtime
client. The flow is the user's: generate, "deploy" the artifact, run, compare.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import StepStatus
from glacier.config import AwsConfig
from glacier.errors import DeploymentNotFoundError, StepTimeoutError, TaskFailedError
from glacier.run.history import RunStore
from glacier.testing import sample_frame
from glacier_aws.storage import polars_storage_options
from glacier_aws.testing.lambda_service import LambdaService

from .fixtures import ARCH, CREDENTIALS, RUNTIME, CloudProject, cloud_project

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


@short_lambda.task(retries=1)
def slow(df):
    time.sleep(30)
    return df


@lambda_exec.task(retries=2)
def flaky(df):
    # Fails on its first attempt only: the marker (a file on this machine) says it was tried.
    marker = os.environ["FLAKY_MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("transient failure in " + os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "?"))
    return df


@lambda_exec.task(cache=True)
def cached_double(df):
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@lambda_exec.task()
def first(df):
    return df.filter(pl.col("value").is_not_null())


@lambda_exec.task()
def second(df):
    if os.path.exists(os.environ["SECOND_BROKEN"]):
        raise RuntimeError("second is broken")
    return df.with_columns((pl.col("value") + 1).alias("plus_one"))


etl = Pipeline(name="etl").source(raw).transform(extract).to(step1).transform(transform).to(step2).transform(aggregate).to(output)
failing = Pipeline(name="failing").source(raw).transform(broken).to(provider.bucket(bucket=bucket, path="broken.parquet"))
too_slow = Pipeline(name="too_slow", retry_backoff=0.01).source(raw).transform(slow).to(provider.bucket(bucket=bucket, path="slow.parquet"))
retried = Pipeline(name="retried", retry_backoff=0.01).source(raw).transform(flaky).to(provider.bucket(bucket=bucket, path="flaky.parquet"))
caching = Pipeline(name="caching").source(raw).transform(cached_double).to(provider.bucket(bucket=bucket, path="cached.parquet"))
chain = (Pipeline(name="chain").source(raw).transform(first).to(provider.bucket(bucket=bucket, path="chain/first.parquet"))
         .transform(second).to(provider.bucket(bucket=bucket, path="chain/second.parquet")))
'''


@pytest.fixture
def project(tmp_path: Path, moto_endpoint: str, lambda_service: LambdaService, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> CloudProject:
    """The pipeline file, loaded like the CLI loads it, with sample data in moto's S3."""
    project = cloud_project(PIPELINE_FILE, tmp_path, monkeypatch, moto=moto_endpoint, service=lambda_service, bucket=s3_bucket)
    sample_frame(20_000).write_parquet(f"s3://{s3_bucket}/raw/data.parquet", storage_options=polars_storage_options(AwsConfig(endpoint_url=moto_endpoint)))
    return project


def test_generate_deploy_and_run_the_seed_pipeline_in_cloud_mode(project: CloudProject, tmp_path: Path, lambda_service: LambdaService, moto_endpoint: str, s3_bucket: str) -> None:
    raw = sample_frame(20_000)
    generated = project.generate("etl", tmp_path / "infra")
    assert set(generated.manifest["functions"]) == {"transform", "aggregate"}
    assert (tmp_path / "infra" / "main.tf").exists()
    project.deploy(generated)

    result = project.pipeline("etl").run(mode="cloud")
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    assert [result[s].executor for s in ("extract", "transform", "aggregate")] == ["local", "lambda", "lambda"]
    assert lambda_service.invocations(generated.manifest["functions"]["transform"]["function_name"]) == 1
    got = pl.read_parquet(f"s3://{s3_bucket}/output/result.parquet", storage_options=polars_storage_options(AwsConfig(endpoint_url=moto_endpoint)))
    expected = raw.filter(pl.col("value").is_not_null()).group_by("category").agg(pl.col("value").sum()).sort("category")
    assert_frame_equal(got, expected)
    assert result["transform"].rows == raw["value"].is_not_null().sum()


def test_a_handler_error_comes_back_as_a_glacier_error_naming_the_step(project: CloudProject, tmp_path: Path) -> None:
    result = project.run("failing", tmp_path / "infra")
    step = result["broken"]
    assert step.status is StepStatus.FAILED
    assert isinstance(step.error, TaskFailedError)
    assert "Step 'broken' failed" in str(step.error) and "ValueError: bad data in failing-broken" in str(step.error)
    assert "(in Lambda function 'failing-broken')" in str(step.error) and "/aws/lambda/failing-broken" in str(step.error)


def steps_of(record: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """A run record's steps: name -> (status, attempts)."""
    return {step["name"]: (step["status"], step["attempts"]) for step in record["steps"]}


def test_a_lambda_timeout_counts_as_a_failed_attempt_and_ends_as_a_timeout_naming_the_step(project: CloudProject, tmp_path: Path, lambda_service: LambdaService) -> None:
    # The function's timeout (3 s) is shorter than the task's sleep (30 s): Lambda kills it.
    result = project.run("too_slow", tmp_path / "infra")
    step = result["slow"]
    assert step.status is StepStatus.TIMED_OUT
    assert isinstance(step.error, StepTimeoutError) and step.error.step == "slow"
    assert "Step 'slow'" in str(step.error) and "'too-slow-slow'" in str(step.error) and "timeout of 3s" in str(step.error)
    assert step.attempts == 2 and "(after 2 attempts)" in str(step.error)
    assert lambda_service.invocations("too-slow-slow") == 2  # the retry invoked the function again
    assert steps_of(RunStore().load(result.run_id)) == {"slow": ("timed_out", 2)}


def test_a_lambda_step_that_fails_once_is_retried_and_the_record_shows_both_attempts(project: CloudProject, tmp_path: Path, lambda_service: LambdaService) -> None:
    marker = tmp_path / "flaky-tried"
    project.environment["FLAKY_MARKER"] = str(marker)
    result = project.run("retried", tmp_path / "infra")
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    assert marker.exists()
    assert result["flaky"].attempts == 2 and lambda_service.invocations("retried-flaky") == 2
    assert steps_of(RunStore().load(result.run_id)) == {"flaky": ("succeeded", 2)}


def test_a_second_run_skips_a_cached_lambda_step_without_invoking_it(project: CloudProject, tmp_path: Path, lambda_service: LambdaService) -> None:
    first = project.run("caching", tmp_path / "infra")
    assert first.ok and first["cached_double"].status is StepStatus.SUCCEEDED
    assert lambda_service.invocations("caching-cached-double") == 1
    second = project.pipeline("caching").run(mode="cloud")
    assert second.ok and second["cached_double"].status is StepStatus.CACHED
    assert lambda_service.invocations("caching-cached-double") == 1
    assert steps_of(RunStore().load(second.run_id)) == {"cached_double": ("cached", 0)}
    assert steps_of(RunStore().load(first.run_id)) == {"cached_double": ("succeeded", 1)}


def test_resume_in_cloud_mode_runs_the_failed_step_again_and_reuses_the_one_before(project: CloudProject, tmp_path: Path, lambda_service: LambdaService) -> None:
    broken = tmp_path / "second-broken"
    broken.touch()
    project.environment["SECOND_BROKEN"] = str(broken)
    failed = project.run("chain", tmp_path / "infra")
    assert failed["first"].status is StepStatus.SUCCEEDED and failed["second"].status is StepStatus.FAILED
    assert "second is broken" in str(failed["second"].error)
    broken.unlink()  # the fix
    resumed = project.pipeline("chain").run(mode="cloud", resume=True)
    assert resumed.ok, resumed.summary()
    assert resumed["first"].status is StepStatus.REUSED and resumed["second"].status is StepStatus.SUCCEEDED
    assert (lambda_service.invocations("chain-first"), lambda_service.invocations("chain-second")) == (1, 2)
    assert steps_of(RunStore().load(failed.run_id)) == {"first": ("succeeded", 1), "second": ("failed", 1)}
    assert {name: status for name, (status, _) in steps_of(RunStore().load(resumed.run_id)).items()} == {"first": "reused", "second": "succeeded"}


def test_cloud_mode_without_a_deployment_says_what_to_do(project: CloudProject) -> None:
    etl = project.pipeline("etl")
    with pytest.raises(DeploymentNotFoundError, match=r"(?s)No deployment of pipeline 'etl'.*terraform.*apply"):
        etl.run(mode="cloud")


# -- a step never starts a run, and a payload never chooses code --------------------------

SEED_STYLE_SCRIPT = '''
import os
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, LambdaConfig

config = AwsConfig(region="us-east-1", endpoint_url=os.environ["MOTO"], service_endpoints={{"lambda": os.environ["LAMBDA"]}})
provider = Provider(config=config)
local_exec = provider.local()
lambda_exec = provider.serverless(config=LambdaConfig(memory=512, timeout=20, runtime="{runtime}", architecture="{arch}"))
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


pipeline = Pipeline(name="seed-etl").source(raw).transform(extract).to(step1).transform(transform).to(step2).transform(aggregate).to(output)

# Execute, at module level, as the seed does (the first time with GENERATE_TO: generate, to deploy).
if os.environ.get("GENERATE_TO"):
    result = pipeline.run(mode="generate", out=os.environ["GENERATE_TO"])
else:
    result = pipeline.run(mode="cloud")
print(result.summary() if hasattr(result, "summary") else result)
'''


def test_a_seed_style_script_invokes_each_function_once_per_step(tmp_path: Path, moto_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each function's handler imports the script's module; without the guard, that import
    # would run the pipeline in cloud mode again and invoke functions from functions.
    # A service of its own, so that whatever a runaway started ends with this test; the
    # script runs under a process tree that is killed past a few processes.
    from process_tree import run_capped

    with LambdaService() as service:
        monkeypatch.setenv("MOTO", moto_endpoint)
        monkeypatch.setenv("LAMBDA", service.endpoint_url)
        monkeypatch.setenv("DATA_BUCKET", s3_bucket)
        monkeypatch.setenv("GLACIER_STATE_DIR", str(tmp_path / "state"))  # the functions see the manifest too
        sample_frame(2_000).write_parquet(f"s3://{s3_bucket}/raw/data.parquet", storage_options=polars_storage_options(AwsConfig(endpoint_url=moto_endpoint)))
        script = tmp_path / "seed_cloud.py"
        script.write_text(textwrap.dedent(SEED_STYLE_SCRIPT.format(runtime=RUNTIME, arch=ARCH)))

        generated = run_capped([sys.executable, str(script)], tmp_path, env=dict(os.environ, GENERATE_TO=str(tmp_path / "infra")), deadline=600)
        assert generated.returncode == 0 and generated.killed is None, generated.stderr
        # What the script reads at import, and the manifest: a runaway run inside a function would find it.
        shared = {name: os.environ[name] for name in ("MOTO", "LAMBDA", "DATA_BUCKET", "GLACIER_STATE_DIR")}
        functions = service.deploy_terraform(tmp_path / "infra", environment={**shared, **CREDENTIALS})
        assert sorted(functions) == ["seed-etl-aggregate", "seed-etl-transform"]

        run = run_capped([sys.executable, str(script)], tmp_path, deadline=240)
        logs = "\n".join(path.read_text() for path in map(service.log_path, functions) if path.exists())
        assert run.killed is None, f"the process tree was killed ({run.killed})"
        assert {f: service.invocations(f) for f in functions} == {f: 1 for f in functions}, logs[-3000:]
        assert run.returncode == 0 and "succeeded" in run.stdout, run.stdout + run.stderr + logs[-3000:]
        assert run.workers == 0
        for function in functions:
            notices = [line for line in service.log_path(function).read_text().splitlines() if line.startswith("glacier: not running")]
            assert notices == ["glacier: not running pipeline 'seed-etl' while module 'seed_cloud' is imported to run a step"]


def test_each_generated_function_is_pinned_to_its_task(project: CloudProject, tmp_path: Path) -> None:
    import hcl2
    from hcl2.utils import SerializationOptions

    project.generate("etl", tmp_path / "infra")
    with open(tmp_path / "infra" / "main.tf") as f:
        doc = hcl2.load(f, serialization_options=SerializationOptions(strip_string_quotes=True, with_comments=False))
    pinned = {
        body["function_name"]: body["environment"][0]["variables"]["GLACIER_TASK"]
        for block in doc["resource"]
        for body in block.get("aws_lambda_function", {}).values()
    }
    assert pinned == {"etl-transform": "cloud_etl:transform", "etl-aggregate": "cloud_etl:aggregate"}


def test_a_deployed_function_refuses_payloads_that_name_code(project: CloudProject, tmp_path: Path, lambda_service: LambdaService, moto_endpoint: str, s3_bucket: str) -> None:
    import json

    import boto3

    from glacier.plugins.serialization import config_to_dict

    generated = project.generate("etl", tmp_path / "infra")
    project.deploy(generated)
    entry = generated.manifest["functions"]["transform"]
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\ndef transform(df):\n    return df\n")
    config = config_to_dict(AwsConfig(region="us-east-1", endpoint_url=moto_endpoint))

    def payload(task: dict[str, Any] | None = None, source_config: dict[str, Any] | None = config) -> dict[str, Any]:
        return {
            "protocol": 1, "run_id": "hostile", "step": "transform", "attempt": 1,
            "task": task or {"module": entry["module"], "qualname": entry["qualname"], "file": None},
            "sources": {"df": {"uri": f"s3://{s3_bucket}/raw/data.parquet", "config": source_config}},
            "target": {"uri": f"s3://{s3_bucket}/hostile/out.parquet", "config": config},
        }

    hostile = {
        "config subprocess:run": (payload(source_config={"type": "subprocess:run", "fields": {"args": ["touch", str(marker)]}}), "config type 'subprocess:run' is not a config class"),
        "config os:system": (payload(source_config={"type": "os:system", "fields": {"command": f"touch {marker}"}}), "config type 'os:system' is not a config class"),
        "config builtins:eval": (payload(source_config={"type": "builtins:eval", "fields": {"source": "1"}}), "config type 'builtins:eval' is not a config class"),
        "another module": (payload({"module": "os", "qualname": "system", "file": None}), "but the payload asks for 'os:system'"),
        "another task": (payload({"module": entry["module"], "qualname": "aggregate", "file": None}), f"but the payload asks for '{entry['module']}:aggregate'"),
        "a file": (payload({"module": entry["module"], "qualname": "transform", "file": str(evil)}), "never loads a file"),
    }
    client = boto3.client("lambda", endpoint_url=lambda_service.endpoint_url, region_name="us-east-1")
    for label, (event, expected) in hostile.items():
        response = client.invoke(FunctionName=entry["function_name"], Payload=json.dumps(event).encode())
        result = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, (label, result)
        assert result["ok"] is False, (label, result)
        assert expected in result["error"]["message"], (label, result["error"]["message"])
    assert not marker.exists(), "a payload ran code in the function"
    response = client.invoke(FunctionName=entry["function_name"], Payload=json.dumps(payload()).encode())
    assert json.loads(response["Payload"].read())["ok"], "the function no longer runs its own task"


def test_a_deployed_function_refuses_a_payload_of_another_protocol_version(project: CloudProject, tmp_path: Path, lambda_service: LambdaService, moto_endpoint: str, s3_bucket: str) -> None:
    import json

    import boto3

    from glacier.plugins.serialization import config_to_dict
    from glacier.run.protocol import PROTOCOL_VERSION

    generated = project.generate("etl", tmp_path / "infra")
    project.deploy(generated)
    entry = generated.manifest["functions"]["transform"]
    config = config_to_dict(AwsConfig(region="us-east-1", endpoint_url=moto_endpoint))
    other = PROTOCOL_VERSION + 1
    event = {
        "protocol": other, "run_id": "older-runner", "step": "transform", "attempt": 1,
        "task": {"module": entry["module"], "qualname": entry["qualname"], "file": None},
        "sources": {"df": {"uri": f"s3://{s3_bucket}/raw/data.parquet", "config": config}},
        "target": {"uri": f"s3://{s3_bucket}/other-protocol/out.parquet", "config": config},
    }
    client = boto3.client("lambda", endpoint_url=lambda_service.endpoint_url, region_name="us-east-1")
    result = json.loads(client.invoke(FunctionName=entry["function_name"], Payload=json.dumps(event).encode())["Payload"].read())
    assert result["ok"] is False, result
    assert f"payload protocol {other!r} is not {PROTOCOL_VERSION}" in result["error"]["message"], result["error"]["message"]
    assert not boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").list_objects_v2(Bucket=s3_bucket, Prefix="other-protocol/").get("KeyCount", 0)


# -- the command line, end to end ---------------------------------------------------------


def test_the_command_line_generates_then_runs_in_cloud_mode_from_the_manifest(project: CloudProject, tmp_path: Path, lambda_service: LambdaService, moto_endpoint: str, s3_bucket: str) -> None:
    def glacier(*args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, COLUMNS="200")  # MOTO, LAMBDA and DATA_BUCKET are set for this test
        return subprocess.run([sys.executable, "-m", "glacier.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)

    out = tmp_path / "infra"
    generated = glacier("generate", f"{project.file}:etl", "--out", str(out))
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert f"Generated infrastructure for aws in {out}" in generated.stdout and "main.tf" in generated.stdout
    manifest = out / "glacier-deployment.json"
    assert set(json.loads(manifest.read_text())["functions"]) == {"transform", "aggregate"}
    lambda_service.deploy_terraform(out, environment=project.environment)

    # A state directory that knows of no deployment: only --manifest can point the run at it.
    lost = glacier("run", f"{project.file}:etl", "--mode", "cloud", "--state-dir", str(tmp_path / "empty"))
    assert lost.returncode != 0 and "No deployment of pipeline 'etl'" in " ".join(lost.stdout.split())
    state = tmp_path / "state"
    ran = glacier("run", f"{project.file}:etl", "--mode", "cloud", "--manifest", str(manifest), "--state-dir", str(state), "--max-workers", "1")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "succeeded" in ran.stdout and "lambda" in ran.stdout

    (record,) = RunStore(state).list("etl")
    assert record["mode"] == "cloud" and record["ok"]
    assert {s["name"]: s["executor"] for s in record["steps"]} == {"extract": "local", "transform": "lambda", "aggregate": "lambda"}
    raw = sample_frame(20_000)
    got = pl.read_parquet(f"s3://{s3_bucket}/output/result.parquet", storage_options=polars_storage_options(AwsConfig(endpoint_url=moto_endpoint)))
    assert_frame_equal(got, raw.filter(pl.col("value").is_not_null()).group_by("category").agg(pl.col("value").sum()).sort("category"))
