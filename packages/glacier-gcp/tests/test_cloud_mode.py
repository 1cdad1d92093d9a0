"""Cloud mode end to end over real protocols on 127.0.0.1.

GCS is fake-gcs-server; Cloud Functions is FunctionsService, which builds each
function from the *generated source zip* as Cloud Functions would (a fresh venv,
``pip install -r requirements.txt`` from the unzipped source, nothing else) and serves
it with functions-framework. The flow is the user's: generate, "deploy" what main.tf
declares, run, compare.
"""

from __future__ import annotations

import io
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import requests
from polars.testing import assert_frame_equal

from glacier import StepStatus
from glacier.cli import load_pipeline
from glacier.config import GcpConfig
from glacier.errors import DeploymentNotFoundError, StepError, StepTimeoutError, TaskFailedError
from glacier.testing import sample_frame
from glacier_gcp.storage import GcsStorage, polars_storage_options
from glacier_gcp.testing.functions_service import FunctionsService
from glacier_gcp.testing.gcs_server import FakeGcsServer

RUNTIME = f"python3{sys.version_info.minor}"  # the venv the functions run in is this interpreter's

PIPELINE_FILE = '''
import os
import time
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import GcpConfig, CloudFunctionConfig

config = GcpConfig(project="glacier-test", region="europe-west1", endpoint_url=os.environ["GCS"], service_endpoints={{"functions": os.environ["FUNCTIONS"]}})
provider = Provider(config=config)
local_exec = provider.local()
fn = provider.serverless(config=CloudFunctionConfig(memory=2048, timeout=60, runtime="{runtime}"))
short_fn = provider.serverless(config=CloudFunctionConfig(memory=512, timeout=3, runtime="{runtime}"))
bucket = os.environ["DATA_BUCKET"]
raw = provider.bucket(bucket=bucket, path="raw/data.parquet")
step1 = provider.bucket(bucket=bucket, path="intermediate/step1.parquet")
step2 = provider.bucket(bucket=bucket, path="intermediate/step2.parquet")
output = provider.bucket(bucket=bucket, path="output/result.parquet")


@local_exec.task()
def extract(df):
    return df.filter(pl.col("value").is_not_null())


@fn.task()
def transform(df):
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@fn.task()
def aggregate(df):
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


@fn.task()
def broken(df):
    raise ValueError("bad data in " + os.environ.get("K_SERVICE", "?"))


@fn.task()
def crash(df):
    os._exit(1)  # the instance dies, as at an out-of-memory kill


@short_fn.task()
def slow(df):
    time.sleep(30)
    return df


etl = Pipeline(name="etl").source(raw).transform(extract).to(step1).transform(transform).to(step2).transform(aggregate).to(output)
failing = Pipeline(name="failing").source(raw).transform(broken).to(provider.bucket(bucket=bucket, path="broken.parquet"))
crashing = Pipeline(name="crashing").source(raw).transform(crash).to(provider.bucket(bucket=bucket, path="crash.parquet"))
too_slow = Pipeline(name="too_slow").source(raw).transform(slow).to(provider.bucket(bucket=bucket, path="slow.parquet"))

# Run at import, as the seed's scripts do: inside a function this must not start a run.
if os.environ.get("RUN_AT_IMPORT"):
    etl.run(mode="cloud")
'''


@pytest.fixture(scope="module")
def functions_service() -> Iterator[FunctionsService]:
    with FunctionsService() as service:
        yield service


@pytest.fixture
def project(tmp_path: Path, gcs_server: FakeGcsServer, functions_service: FunctionsService, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The pipeline file, loaded like the CLI loads it, with sample data in fake-gcs-server."""
    monkeypatch.setenv("GCS", gcs_server.endpoint)
    monkeypatch.setenv("FUNCTIONS", functions_service.endpoint)
    monkeypatch.setenv("DATA_BUCKET", gcs_bucket)
    file = tmp_path / "cloud_etl.py"
    file.write_text(textwrap.dedent(PIPELINE_FILE.format(runtime=RUNTIME)))
    raw = sample_frame(20_000)
    buffer = io.BytesIO()
    raw.write_parquet(buffer)
    GcsStorage(GcpConfig(project="glacier-test", endpoint_url=gcs_server.endpoint)).fs.pipe(f"{gcs_bucket}/raw/data.parquet", buffer.getvalue())
    return file, raw, {"GCS": gcs_server.endpoint, "FUNCTIONS": functions_service.endpoint, "DATA_BUCKET": gcs_bucket}


def generate_deploy_run(project: Any, name: str, out: Path, service: FunctionsService, **deploy: Any) -> Any:
    """The user's flow for one pipeline of the file: generate, deploy, run in cloud mode."""
    pipeline = load_pipeline(f"{project[0]}:{name}")
    generated = pipeline.run(mode="generate", out=out)
    urls = service.deploy_terraform(out, environment=project[2], **deploy)
    assert {entry["function_name"]: entry["extras"]["url"] for entry in generated.manifest["functions"].values()} == urls
    return pipeline.run(mode="cloud")


def test_generate_deploy_and_run_the_seed_pipeline_in_cloud_mode(project: Any, tmp_path: Path, functions_service: FunctionsService, gcs_server: FakeGcsServer, gcs_bucket: str) -> None:
    file, raw, _ = project
    result = generate_deploy_run(project, "etl", tmp_path / "infra", functions_service)
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    assert [result[s].executor for s in ("extract", "transform", "aggregate")] == ["local", "cloudfunction", "cloudfunction"]
    assert functions_service.invocations("etl-transform") == 1 and functions_service.invocations("etl-aggregate") == 1
    options = polars_storage_options(GcpConfig(project="glacier-test", endpoint_url=gcs_server.endpoint))
    got = pl.read_parquet(f"gs://{gcs_bucket}/output/result.parquet", storage_options=options, credential_provider=None)
    expected = raw.filter(pl.col("value").is_not_null()).group_by("category").agg(pl.col("value").sum()).sort("category")
    assert_frame_equal(got, expected)
    assert result["transform"].rows == raw["value"].is_not_null().sum()


def test_a_function_importing_a_module_that_runs_its_pipeline_runs_only_its_step(project: Any, tmp_path: Path, functions_service: FunctionsService) -> None:
    """K_SERVICE marks the function's process as one that executes steps: the module-level run is skipped."""
    file, _, environment = project
    pipeline = load_pipeline(f"{file}:etl")
    pipeline.run(mode="generate", out=tmp_path / "infra")
    functions_service.deploy_terraform(tmp_path / "infra", environment={**environment, "RUN_AT_IMPORT": "1"})
    result = pipeline.run(mode="cloud")
    assert result.ok, result.summary()
    assert functions_service.invocations("etl-transform") == 1 and functions_service.invocations("etl-aggregate") == 1
    notices = [line for line in functions_service.log("etl-transform").splitlines() if line.startswith("glacier: not running")]
    assert notices == ["glacier: not running pipeline 'etl' while module 'cloud_etl' is imported to run a step"]


def test_a_task_error_comes_back_as_a_glacier_error_naming_the_function_and_its_logs(project: Any, tmp_path: Path, functions_service: FunctionsService) -> None:
    result = generate_deploy_run(project, "failing", tmp_path / "infra", functions_service)
    step = result["broken"]
    assert step.status is StepStatus.FAILED
    assert isinstance(step.error, TaskFailedError)
    assert "ValueError: bad data in failing-broken" in str(step.error)
    assert "(in Cloud Function 'failing-broken')" in str(step.error)
    assert 'resource.labels.service_name="failing-broken"' in str(step.error)


def test_a_function_timeout_comes_back_as_a_timed_out_step(project: Any, tmp_path: Path, functions_service: FunctionsService, gcs_bucket: str) -> None:
    result = generate_deploy_run(project, "too_slow", tmp_path / "infra", functions_service)
    step = result["slow"]
    assert step.status is StepStatus.TIMED_OUT
    assert isinstance(step.error, StepTimeoutError)
    assert "'too-slow-slow'" in str(step.error) and "timeout of 3s" in str(step.error)
    assert not load_pipeline(f"{project[0]}:too_slow").steps[0].target.exists()


def test_an_instance_that_dies_is_an_error_naming_the_function_and_its_logs(project: Any, tmp_path: Path, functions_service: FunctionsService) -> None:
    result = generate_deploy_run(project, "crashing", tmp_path / "infra", functions_service)
    step = result["crash"]
    assert step.status is StepStatus.FAILED and isinstance(step.error, StepError)
    assert "Cloud Function 'crashing-crash' failed: HTTP 503" in str(step.error)
    assert 'resource.labels.service_name="crashing-crash"' in str(step.error)


def test_a_403_names_the_missing_invoker_role(project: Any, tmp_path: Path, functions_service: FunctionsService) -> None:
    """The function refuses a caller without roles/run.invoker, as Cloud Run does: no token, 403."""
    result = generate_deploy_run(project, "failing", tmp_path / "infra", functions_service, require_auth=True)
    step = result["broken"]
    assert step.status is StepStatus.FAILED and isinstance(step.error, StepError)
    assert "HTTP 403" in str(step.error) and "roles/run.invoker" in str(step.error)
    assert "gcloud functions add-invoker-policy-binding failing-broken --region=europe-west1" in str(step.error)


def test_cloud_mode_without_a_deployment_says_what_to_do(project: Any) -> None:
    with pytest.raises(DeploymentNotFoundError, match=r"(?s)No deployment of pipeline 'etl'.*terraform.*apply"):
        load_pipeline(f"{project[0]}:etl").run(mode="cloud")


def test_a_deployed_function_refuses_payloads_that_name_code(project: Any, tmp_path: Path, functions_service: FunctionsService, gcs_server: FakeGcsServer, gcs_bucket: str) -> None:
    from glacier.plugins.serialization import config_to_dict

    file, _, environment = project
    generated = load_pipeline(f"{file}:etl").run(mode="generate", out=tmp_path / "infra")
    urls = functions_service.deploy_terraform(tmp_path / "infra", environment=environment)
    entry = generated.manifest["functions"]["transform"]
    marker = tmp_path / "pwned"
    config = config_to_dict(GcpConfig(project="glacier-test", endpoint_url=gcs_server.endpoint))

    def payload(task: dict[str, Any] | None = None, source_config: dict[str, Any] | None = config) -> dict[str, Any]:
        return {
            "protocol": 1, "run_id": "hostile", "step": "transform", "attempt": 1,
            "task": task or {"module": entry["module"], "qualname": entry["qualname"], "file": None},
            "sources": {"df": {"uri": f"gs://{gcs_bucket}/raw/data.parquet", "config": source_config}},
            "target": {"uri": f"gs://{gcs_bucket}/hostile/out.parquet", "config": config},
        }

    hostile = {
        "config os:system": (payload(source_config={"type": "os:system", "fields": {"command": f"touch {marker}"}}), "config type 'os:system' is not a config class"),
        "another module": (payload({"module": "os", "qualname": "system", "file": None}), "but the payload asks for 'os:system'"),
        "a file": (payload({"module": entry["module"], "qualname": "transform", "file": str(tmp_path / "evil.py")}), "never loads a file"),
    }
    for label, (event, expected) in hostile.items():
        response = requests.post(urls[entry["function_name"]], data=json.dumps(event), headers={"Content-Type": "application/json"}, timeout=60)
        result = response.json()
        assert response.status_code == 200 and result["ok"] is False, (label, result)
        assert expected in result["error"]["message"], (label, result["error"]["message"])
    assert not marker.exists(), "a payload ran code in the function"
    response = requests.post(urls[entry["function_name"]], data=json.dumps(payload()), headers={"Content-Type": "application/json"}, timeout=60)
    assert response.json()["ok"], "the function no longer runs its own task"
