"""Behaviour of the local Lambda service, driven through real boto3 and real awslambdaric."""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from glacier_aws.testing.lambda_service import LambdaService

HANDLER = '''
import os
import time

def echo(event, context):
    return {"event": event, "remaining_ms": context.get_remaining_time_in_millis(),
            "function_name": context.function_name, "arn": context.invoked_function_arn,
            "request_id": context.aws_request_id, "memory": context.memory_limit_in_mb}

def fail(event, context):
    raise ValueError("bad input: " + str(event["x"]))

def sleep(event, context):
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}

def env(event, context):
    return {name: os.environ.get(name) for name in event["names"]}

def crash(event, context):
    if event["code"] is None:
        return "alive"
    print("about to exit", event["code"], flush=True)
    os._exit(event["code"])

def pid(event, context):
    return os.getpid()

def sleep_after_pid(event, context):
    with open(event["pid_file"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(event["seconds"])
    return {"slept": event["seconds"]}

def rendezvous(event, context):
    # Arrive, then wait (up to a deadline) for the other party: both arrive only if both run at once.
    open(os.path.join(event["dir"], context.function_name), "w").close()
    other = os.path.join(event["dir"], event["other"])
    deadline = time.monotonic() + event["patience"]
    while not os.path.exists(other) and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.path.exists(other)

def alone(event, context):
    # Inside, look for another invocation inside at the same time, then leave.
    mine = os.path.join(event["dir"], context.aws_request_id)
    open(mine, "w").close()
    deadline = time.monotonic() + event["window"]
    company = False
    while time.monotonic() < deadline and not company:
        company = len(os.listdir(event["dir"])) > 1
        time.sleep(0.01)
    os.remove(mine)
    return company

def where(event, context):
    import importlib.util
    import sys
    return {"path": sys.path, "pytest": importlib.util.find_spec("pytest") is not None,
            "no_site": sys.flags.no_site, "env": dict(os.environ)}
'''


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lambda_code")
    (path / "handlers.py").write_text(textwrap.dedent(HANDLER))
    (path / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    return path


@pytest.fixture(scope="module")
def service(code_dir: Path) -> Iterator[LambdaService]:
    with LambdaService() as svc:
        svc.deploy("echo", code_dir, "handlers.echo", memory=256)
        svc.deploy("fail", code_dir, "handlers.fail")
        svc.deploy("sleepy", code_dir, "handlers.sleep_after_pid", timeout=1.0)
        svc.deploy("meet-a", code_dir, "handlers.rendezvous")
        svc.deploy("meet-b", code_dir, "handlers.rendezvous")
        svc.deploy("alone", code_dir, "handlers.alone")
        svc.deploy("env", code_dir, "handlers.env", environment={"GLACIER_STAGE": "test"})
        svc.deploy("broken", code_dir, "broken.handler")
        svc.deploy("crash", code_dir, "handlers.crash")
        svc.deploy("where", code_dir, "handlers.where", environment={"GIVEN": "1"})
        yield svc


@pytest.fixture(scope="module")
def client(service: LambdaService) -> Any:
    return boto3.client(
        "lambda", endpoint_url=service.endpoint_url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=60))


def invoke(client: Any, name: str, event: Any) -> tuple[dict[str, Any], Any]:
    response = client.invoke(FunctionName=name, InvocationType="RequestResponse",
                             Payload=json.dumps(event))
    return response, json.loads(response["Payload"].read())


def test_invoke_round_trips_json_and_gives_handler_a_real_context(
    client: Any, service: LambdaService
) -> None:
    response, body = invoke(client, "echo", {"a": [1, 2], "b": "x"})
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert body["event"] == {"a": [1, 2], "b": "x"}
    assert 0 < body["remaining_ms"] <= 30_000
    assert body["function_name"] == "echo"
    assert body["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:echo"
    assert body["request_id"] and body["memory"] == "256"
    assert service.invocations("echo") >= 1


def test_function_arn_is_accepted_as_function_name(client: Any) -> None:
    _, body = invoke(client, "arn:aws:lambda:us-east-1:123456789012:function:echo", 7)
    assert body["event"] == 7


def test_handler_exception_comes_back_as_unhandled_function_error(client: Any) -> None:
    response, body = invoke(client, "fail", {"x": 42})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad input: 42"
    assert isinstance(body["stackTrace"], list)


def test_import_error_comes_back_as_unhandled_init_error(client: Any) -> None:
    response, body = invoke(client, "broken", {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "RuntimeError"
    assert body["errorMessage"] == "boom at import"


def test_handler_running_past_timeout_is_killed_and_next_invoke_works(
    client: Any, service: LambdaService, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    response, body = invoke(client, "sleepy", {"seconds": 30, "pid_file": str(pid_file)})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    with pytest.raises(ProcessLookupError):  # killed, not left sleeping: the answer came before the sleep ended
        os.kill(int(pid_file.read_text()), 0)
    response, body = invoke(client, "sleepy", {"seconds": 0, "pid_file": str(pid_file)})
    assert "FunctionError" not in response, service.log_path("sleepy").read_text()
    assert body == {"slept": 0}


def test_unknown_function_raises_resource_not_found(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.invoke(FunctionName="nope", Payload=b"{}")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:nope" in info.value.response["Error"]["Message"]


def test_different_functions_run_concurrently(client: Any, tmp_path: Path) -> None:
    # Each waits for the other to arrive; one after the other, the first would wait in vain.
    events = [{"dir": str(tmp_path), "other": other, "patience": 20} for other in ("meet-b", "meet-a")]
    with ThreadPoolExecutor(2) as pool:
        met = list(pool.map(lambda name, event: invoke(client, name, event)[1], ["meet-a", "meet-b"], events))
    assert met == [True, True]


def test_invocations_of_one_function_are_served_one_at_a_time(
    client: Any, service: LambdaService, tmp_path: Path
) -> None:
    # Each invocation stays inside for a while, looking for company; the second is
    # sent while the first is inside (its marker exists), so it is queued, not run beside it.
    before = service.invocations("alone")
    event = {"dir": str(tmp_path), "window": 1.0}
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(invoke, client, "alone", event)
        deadline = time.monotonic() + 60
        while not any(tmp_path.iterdir()) and not first.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        second = pool.submit(invoke, client, "alone", event)
        results = [first.result()[1], second.result()[1]]
    assert results == [False, False]
    assert service.invocations("alone") == before + 2


def test_deployed_environment_reaches_the_handler(client: Any) -> None:
    names = ["GLACIER_STAGE", "AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME",
             "AWS_LAMBDA_FUNCTION_VERSION"]
    _, body = invoke(client, "env", {"names": names})
    assert body == {"GLACIER_STAGE": "test", "AWS_REGION": "us-east-1",
                    "AWS_LAMBDA_FUNCTION_NAME": "env", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}


def test_crashed_runtime_reports_exit_error_logs_output_and_restarts(
    client: Any, service: LambdaService
) -> None:
    response, body = invoke(client, "crash", {"code": 3})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert "about to exit 3" in service.log_path("crash").read_text()
    _, body = invoke(client, "crash", {"code": None})
    assert body == "alive"


def test_stop_kills_runtime_processes(code_dir: Path) -> None:
    svc = LambdaService().start()
    try:
        svc.deploy("pid", code_dir, "handlers.pid")
        lam = boto3.client("lambda", endpoint_url=svc.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        pid = json.loads(lam.invoke(FunctionName="pid", Payload=b"{}")["Payload"].read())
        os.kill(pid, 0)  # the runtime is alive between invocations
    finally:
        svc.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


TERRAFORM = '''
resource "aws_s3_object" "code" {
  bucket = "artifacts"
  key    = "lambda/code.zip"
  source = "${path.module}/artifacts/code.zip"
}

resource "aws_lambda_function" "env" {
  function_name = "tf-env"
  handler       = "handlers.env"
  runtime       = "python3.11"
  s3_bucket     = aws_s3_object.code.bucket
  s3_key        = aws_s3_object.code.key

  environment {
    variables = {
      GLACIER_TASK = "pipelines.etl:double"
      STAGE        = "from-terraform"
    }
  }
}

resource "aws_lambda_function" "echo" {
  function_name = "tf-echo"
  handler       = "handlers.echo"
  runtime       = "python3.11"
  s3_bucket     = aws_s3_object.code.bucket
  s3_key        = aws_s3_object.code.key
  memory_size   = 320
  timeout       = 7
}
'''


def test_deploy_terraform_creates_each_function_as_the_module_declares_it(code_dir: Path, tmp_path: Path) -> None:
    import zipfile

    (tmp_path / "artifacts").mkdir()
    with zipfile.ZipFile(tmp_path / "artifacts" / "code.zip", "w") as archive:
        archive.write(code_dir / "handlers.py", "handlers.py")
    (tmp_path / "main.tf").write_text(TERRAFORM)
    with LambdaService() as svc:
        assert svc.deploy_terraform(tmp_path, environment={"STAGE": "overridden", "EXTRA": "1"}) == ["tf-echo", "tf-env"]
        lam = boto3.client("lambda", endpoint_url=svc.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        _, body = invoke(lam, "tf-env", {"names": ["GLACIER_TASK", "STAGE", "EXTRA"]})
        assert body == {"GLACIER_TASK": "pipelines.etl:double", "STAGE": "overridden", "EXTRA": "1"}
        _, body = invoke(lam, "tf-echo", {})
        assert body["memory"] == "320" and 0 < body["remaining_ms"] <= 7000


def test_a_function_sees_neither_this_machines_packages_nor_the_tests_environment(client: Any, code_dir: Path) -> None:
    # This process has AWS keys and pytest's variables set; a function gets only what it is given.
    assert os.environ["AWS_ACCESS_KEY_ID"] and os.environ["PYTEST_CURRENT_TEST"]
    _, body = invoke(client, "where", {})
    assert body["no_site"] == 1 and body["pytest"] is False
    assert body["path"][0] == str(code_dir.resolve())
    assert not any("site-packages" in entry for entry in body["path"]), body["path"]
    # LC_CTYPE: Python coerces a C locale (en_US.UTF-8 is not installed here) to C.UTF-8.
    runtime = {"PATH", "LANG", "LC_CTYPE", "TZ", "PYTHONPATH", "PYTHONUNBUFFERED", "_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
               "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_RUNTIME_API", "_X_AMZN_TRACE_ID"}
    unexpected = {k for k in body["env"] if k not in runtime and not k.startswith("AWS_LAMBDA_")} - {"GIVEN"}
    assert unexpected == set(), unexpected
    assert body["env"]["GIVEN"] == "1"


def test_a_function_runs_with_its_artifact_alone_so_a_missing_dependency_is_an_import_error_naming_it(
    artifact_tree: Path, tmp_path: Path, moto_endpoint: str, s3_bucket: str
) -> None:
    import shutil

    from glacier.config import AwsConfig
    from glacier.plugins.serialization import config_to_dict
    from glacier.run.protocol import PROTOCOL_VERSION
    from glacier.testing import sample_frame
    from glacier_aws.storage import polars_storage_options

    pruned = tmp_path / "pruned"  # the artifact without polars (linked, not copied)
    shutil.copytree(artifact_tree, pruned, copy_function=os.link, ignore=lambda d, names: ["polars"] if Path(d) == artifact_tree else [])
    assert (artifact_tree / "polars").is_dir() and not (pruned / "polars").exists()
    config = AwsConfig(region="us-east-1", endpoint_url=moto_endpoint)
    sample_frame(100).write_parquet(f"s3://{s3_bucket}/raw.parquet", storage_options=polars_storage_options(config))
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    env = {**keys, "GLACIER_TASK": "glacier.testing.tasks:double_value"}

    def event(name: str) -> dict[str, Any]:
        where = {"config": config_to_dict(config)}
        return {"protocol": PROTOCOL_VERSION, "run_id": name, "step": "double_value", "attempt": 1,
                "task": {"module": "glacier.testing.tasks", "qualname": "double_value", "file": None},
                "sources": {"df": {"uri": f"s3://{s3_bucket}/raw.parquet", **where}},
                "target": {"uri": f"s3://{s3_bucket}/{name}/out.parquet", **where}}

    with LambdaService() as svc:
        svc.deploy("full", artifact_tree, "glacier_aws.handler.handler", environment=env)
        svc.deploy("pruned", pruned, "glacier_aws.handler.handler", environment=env)
        lam = boto3.client("lambda", endpoint_url=svc.endpoint_url, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}, read_timeout=120))
        _, full = invoke(lam, "full", event("full"))
        _, broken = invoke(lam, "pruned", event("pruned"))
    assert full.get("ok") is True and full["rows"] == 100, full
    assert "No module named 'polars'" in json.dumps(broken), broken
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix="pruned/").get("KeyCount", 0) == 0
