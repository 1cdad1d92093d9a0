"""Cloud mode end to end over real protocols on 127.0.0.1.

Blob Storage and the queues are Azurite; the functions run in FunctionsHost, which
dequeues from Azurite and calls the *built artifact's* ``function_app.py`` in a worker
process that sees only the unzipped artifact. The flow is the user's: generate,
"deploy" (what `terraform apply` does for the apps), run in cloud mode, compare.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import StepStatus
from glacier.cli import load_pipeline
from glacier.errors import StepError, StepTimeoutError, TaskFailedError
from glacier.testing import sample_frame
from glacier_azure.storage import polars_storage_options
from glacier_azure.testing.azurite import Azurite
from glacier_azure.testing.functions_host import FunctionsHost

from .fixtures import CREDENTIALS

RUNTIME = f"3.{sys.version_info.minor}"  # the artifact must run on this interpreter

#: A short stand-in for the 230 s an HTTP-triggered Azure Function has to answer.
HTTP_CAP_STAND_IN = 2.0

PIPELINE_FILE = '''
import os
import time
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import AzureConfig, AzureFunctionConfig

config = AzureConfig(storage_account="devstoreaccount1", endpoint_url=os.environ["AZURITE_BLOB"], service_endpoints={{"queue": os.environ["AZURITE_QUEUE"]}})
provider = Provider(config=config)
local_exec = provider.local()
functions = provider.serverless(config=AzureFunctionConfig(memory=2048, timeout=60, runtime="{runtime}"))
short = provider.serverless(config=AzureFunctionConfig(memory=512, timeout=3, runtime="{runtime}"))
fragile = provider.serverless(config=AzureFunctionConfig(timeout=60, runtime="{runtime}", max_dequeue_count=2))
container = os.environ["DATA_CONTAINER"]
raw = provider.bucket(bucket=container, path="raw/data.parquet")
step1 = provider.bucket(bucket=container, path="intermediate/step1.parquet")
step2 = provider.bucket(bucket=container, path="intermediate/step2.parquet")
output = provider.bucket(bucket=container, path="output/result.parquet")


@local_exec.task()
def extract(df):
    return df.filter(pl.col("value").is_not_null())


@functions.task()
def transform(df):
    time.sleep(float(os.environ.get("GLACIER_TEST_STEP_SECONDS", "0")))  # longer than the HTTP cap's stand-in
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@functions.task()
def aggregate(df):
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


@functions.task()
def broken(df):
    raise ValueError("bad data in " + os.environ.get("GLACIER_AZURE_FUNCTION", "?"))


@fragile.task()
def crash(df):
    os._exit(137)  # the instance dies (as when it runs out of memory): the message is poisoned


@fragile.task()
def flaky(df):
    marker = os.path.join(os.environ["MARKER_DIR"], "first-delivery")
    if not os.path.exists(marker):  # the first delivery's instance dies; the second runs the step
        open(marker, "w").close()
        os._exit(137)
    return df


@short.task()
def slow(df):
    time.sleep(30)
    return df


etl = Pipeline(name="etl").source(raw).transform(extract).to(step1).transform(transform).to(step2).transform(aggregate).to(output)
failing = Pipeline(name="failing").source(raw).transform(broken).to(provider.bucket(bucket=container, path="broken.parquet"))
poisoned = Pipeline(name="poisoned").source(raw).transform(crash).to(provider.bucket(bucket=container, path="crash.parquet"))
redelivered = Pipeline(name="redelivered").source(raw).transform(flaky).to(provider.bucket(bucket=container, path="flaky.parquet"))
too_slow = Pipeline(name="too_slow").source(raw).transform(slow).to(provider.bucket(bucket=container, path="slow.parquet"))
'''


@pytest.fixture(scope="module")
def functions_host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionsHost]:
    with FunctionsHost(azurite.connection_string, tmp_path_factory.mktemp("functions-host")) as host:
        yield host


@pytest.fixture
def project(tmp_path: Path, azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The pipeline file, loaded like the CLI loads it, with sample data in Azurite."""
    monkeypatch.setenv("AZURITE_BLOB", azurite.blob_endpoint)
    monkeypatch.setenv("AZURITE_QUEUE", azurite.queue_endpoint)
    monkeypatch.setenv("DATA_CONTAINER", container)
    monkeypatch.setenv("MARKER_DIR", str(tmp_path))
    file = tmp_path / "cloud_etl.py"
    file.write_text(textwrap.dedent(PIPELINE_FILE.format(runtime=RUNTIME)))
    raw = sample_frame(20_000)
    raw.write_parquet(f"az://{container}/raw/data.parquet", storage_options=polars_storage_options(azurite.config()))
    return file, raw


def generate_deploy_run(project: Any, name: str, out: Path, host: FunctionsHost, environment: dict[str, str] | None = None) -> tuple[Any, Any]:
    """The user's flow for one pipeline of the file: generate, deploy, run in cloud mode."""
    pipeline = load_pipeline(f"{project[0]}:{name}")
    generated = pipeline.run(mode="generate", out=out)
    # The module reads where Azurite is at import, as it would read its own settings in Azure.
    settings = {name: os.environ[name] for name in ("AZURITE_BLOB", "AZURITE_QUEUE", "DATA_CONTAINER", "MARKER_DIR")}
    deployed = host.deploy_terraform(out, {**CREDENTIALS, **settings, **(environment or {})})
    assert sorted(deployed) == sorted(entry["function_name"] for entry in generated.manifest["functions"].values())
    return generated, pipeline.run(mode="cloud")


def test_the_seed_pipeline_runs_in_cloud_mode_with_a_step_longer_than_the_http_cap(project: Any, tmp_path: Path, functions_host: FunctionsHost, azurite: Azurite, container: str) -> None:
    file, raw = project
    generated, result = generate_deploy_run(project, "etl", tmp_path / "infra", functions_host, {"GLACIER_TEST_STEP_SECONDS": str(HTTP_CAP_STAND_IN + 1.5)})
    assert set(generated.manifest["functions"]) == {"transform", "aggregate"}
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    assert [result[s].executor for s in ("extract", "transform", "aggregate")] == ["local", "azure-functions", "azure-functions"]
    assert result["transform"].seconds > HTTP_CAP_STAND_IN  # queue-triggered: no HTTP answer to give within the cap
    transform_app = generated.manifest["functions"]["transform"]["function_name"]
    assert functions_host.invocations(transform_app) == 1
    # The worker saw the artifact and the standard library only.
    code = str(functions_host.log_dir / "apps" / transform_app)
    assert all(p.startswith((code, sys.base_prefix)) or p == "" for p in functions_host.sys_path(transform_app)), functions_host.sys_path(transform_app)
    got = pl.read_parquet(f"az://{container}/output/result.parquet", storage_options=polars_storage_options(azurite.config()))
    expected = raw.filter(pl.col("value").is_not_null()).group_by("category").agg(pl.col("value").sum()).sort("category")
    assert_frame_equal(got, expected)
    assert result["transform"].rows == raw["value"].is_not_null().sum()


def test_a_message_delivered_twice_leaves_one_whole_target(project: Any, tmp_path: Path, functions_host: FunctionsHost, azurite: Azurite, container: str) -> None:
    from azure.storage.queue import QueueClient

    from glacier.plugins.payload import build_payload

    generated, first = generate_deploy_run(project, "etl", tmp_path / "infra", functions_host)
    assert first.ok
    entry = generated.manifest["functions"]["aggregate"]
    step = next(s for s in load_pipeline(f"{project[0]}:etl").build().topological_sort() if s.name == "aggregate")
    payload = {**build_payload(step, "twice", 1), "task": {"module": entry["module"], "qualname": entry["qualname"], "file": None},
               "function": entry["function_name"], "invocation": "dup"}  # fmt: skip
    before = functions_host.invocations(entry["function_name"])
    queue = QueueClient.from_connection_string(azurite.connection_string, entry["extras"]["queue"])
    for _ in range(2):  # the same message twice, as an at-least-once queue may deliver it
        queue.send_message(base64.b64encode(json.dumps(payload).encode()).decode())
    deadline = time.monotonic() + 60
    while functions_host.invocations(entry["function_name"]) < before + 2 or queue.get_queue_properties().approximate_message_count:
        assert time.monotonic() < deadline, "the host did not run both deliveries"
        time.sleep(0.2)
    # Both messages are gone: each was deleted after its run had written its target and result.
    got = pl.read_parquet(f"az://{container}/output/result.parquet", storage_options=polars_storage_options(azurite.config()))
    raw = project[1]
    assert_frame_equal(got, raw.filter(pl.col("value").is_not_null()).group_by("category").agg(pl.col("value").sum()).sort("category"))


def test_a_task_error_comes_back_as_a_glacier_error_naming_the_step_and_the_app(project: Any, tmp_path: Path, functions_host: FunctionsHost) -> None:
    _, result = generate_deploy_run(project, "failing", tmp_path / "infra", functions_host)
    step = result["broken"]
    assert step.status is StepStatus.FAILED
    assert isinstance(step.error, TaskFailedError)
    assert "ValueError: bad data in failing-broken" in str(step.error)
    assert "(in Azure Function app 'failing-broken')" in str(step.error) and "Application Insights" in str(step.error)


def test_a_poisoned_message_comes_back_naming_the_app_and_its_logs(project: Any, tmp_path: Path, functions_host: FunctionsHost) -> None:
    _, result = generate_deploy_run(project, "poisoned", tmp_path / "infra", functions_host)
    step = result["crash"]
    assert step.status is StepStatus.FAILED and isinstance(step.error, StepError) and not isinstance(step.error, StepTimeoutError)
    assert "poison queue poisoned-crash-poison" in str(step.error) and "'poisoned-crash'" in str(step.error)
    assert "Application Insights" in str(step.error)
    assert functions_host.invocations("poisoned-crash") == 2  # delivered max_dequeue_count times, then poisoned
    assert functions_host.failures("poisoned-crash") == ["the worker process exited with code 137"] * 2


def test_a_failed_delivery_is_retried_by_dequeue_count_and_the_step_succeeds(project: Any, tmp_path: Path, functions_host: FunctionsHost) -> None:
    _, result = generate_deploy_run(project, "redelivered", tmp_path / "infra", functions_host)
    assert result.ok, result.summary()
    assert result["flaky"].attempts == 1  # one Glacier attempt, delivered twice by the queue
    assert functions_host.invocations("redelivered-flaky") == 2
    assert functions_host.failures("redelivered-flaky") == ["the worker process exited with code 137"]


def test_a_step_past_its_function_timeout_is_a_timed_out_step(project: Any, tmp_path: Path, functions_host: FunctionsHost) -> None:
    _, result = generate_deploy_run(project, "too_slow", tmp_path / "infra", functions_host)
    step = result["slow"]
    assert step.status is StepStatus.TIMED_OUT, step.status
    assert isinstance(step.error, StepTimeoutError) and "ran past its timeout of 3s" in str(step.error)
    assert functions_host.failures("too-slow-slow")[0].startswith("Timeout value of 3s exceeded by function 'Functions.glacier_step'")
