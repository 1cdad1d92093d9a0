"""The Lambda handler, called in this process: a payload never chooses the code it runs.

A deployed function runs only the task named by its ``GLACIER_TASK`` and rebuilds only
config classes of installed plugins; every hostile payload here would create a marker
file if it were obeyed. (test_cloud_mode.py sends the same payloads through the real
Lambda runtime.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glacier_aws.handler import handler

TASK = "glacier.testing.tasks:double_value"


def payload(tmp_path: Path, *, task: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = tmp_path / "raw.parquet"
    pl.DataFrame({"value": [1, 2]}).write_parquet(raw)
    return {
        "protocol": 1,
        "run_id": "hostile",
        "step": "double_value",
        "attempt": 1,
        "task": task or {"module": "glacier.testing.tasks", "qualname": "double_value", "file": None},
        "sources": {"df": {"uri": f"file://{raw}", "config": config}},
        "target": {"uri": f"file://{tmp_path}/out.parquet", "config": None},
    }


def hostile_configs(marker: Path) -> dict[str, dict[str, Any]]:
    return {
        "subprocess:run": {"type": "subprocess:run", "fields": {"args": ["touch", str(marker)]}},
        "os:system": {"type": "os:system", "fields": {"command": f"touch {marker}"}},
        "builtins:eval": {"type": "builtins:eval", "fields": {"source": f"open({str(marker)!r}, 'w')"}},
    }


def hostile_tasks(tmp_path: Path, marker: Path) -> dict[str, dict[str, Any]]:
    script = tmp_path / "evil.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\ndef double_value(df):\n    return df\n")
    return {
        "another module": {"module": "os", "qualname": "system", "file": None},
        "another task of the module": {"module": "glacier.testing.tasks", "qualname": "fail_loudly", "file": None},
        "a file path": {"module": "glacier.testing.tasks", "qualname": "double_value", "file": str(script)},
        "a file under another name": {"module": "evil", "qualname": "double_value", "file": str(script)},
    }


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process stands in for the function deployed for TASK."""
    monkeypatch.setenv("GLACIER_TASK", TASK)


@pytest.mark.parametrize("name", ["subprocess:run", "os:system", "builtins:eval"])
def test_the_handler_refuses_a_config_type_no_plugin_contributes(tmp_path: Path, deployed: None, name: str) -> None:
    marker = tmp_path / "pwned"
    result = handler(payload(tmp_path, config=hostile_configs(marker)[name]), None)
    assert result["ok"] is False
    assert f"config type {name!r} is not a config class of an installed Glacier plugin" in result["error"]["message"]
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["another module", "another task of the module", "a file path", "a file under another name"])
def test_the_handler_runs_only_the_task_it_was_deployed_for(tmp_path: Path, deployed: None, kind: str) -> None:
    marker = tmp_path / "pwned"
    result = handler(payload(tmp_path, task=hostile_tasks(tmp_path, marker)[kind]), None)
    assert result["ok"] is False, result
    message = result["error"]["message"]
    assert f"this function runs only task {TASK!r} (GLACIER_TASK)" in message and "refused" in message, message
    assert not marker.exists()
    assert not (tmp_path / "out.parquet").exists()


def test_the_handler_runs_the_task_it_was_deployed_for(tmp_path: Path, deployed: None) -> None:
    result = handler(payload(tmp_path), None)
    assert result["ok"], result
    assert pl.read_parquet(tmp_path / "out.parquet")["doubled"].to_list() == [2, 4]


def test_a_function_without_glacier_task_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLACIER_TASK", raising=False)
    result = handler(payload(tmp_path), None)
    assert result["ok"] is False
    assert "this function has no GLACIER_TASK environment variable" in result["error"]["message"]
    assert not (tmp_path / "out.parquet").exists()


def test_inside_the_lambda_runtime_the_handler_marks_its_process_as_one_that_runs_steps(tmp_path: Path, artifact_tree: Path) -> None:
    # Importing the handler in a test process marks nothing; inside the runtime it does, so
    # a task of the function that starts a pipeline run is refused there.
    import json
    import os

    import boto3

    from glacier_aws.testing.lambda_service import LambdaService

    import shutil

    assert "GLACIER_STEP_PROCESS" not in os.environ
    code = tmp_path / "code"  # the artifact (linked, not copied) plus the probe
    shutil.copytree(artifact_tree, code, copy_function=os.link)
    (code / "probe.py").write_text(
        "import os\nimport glacier_aws.handler  # noqa: F401\n\n"
        "def probe(event, context):\n    return os.environ.get('GLACIER_STEP_PROCESS')\n"
    )
    with LambdaService() as service:
        service.deploy("probe", code, "probe.probe")
        client = boto3.client("lambda", endpoint_url=service.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        assert json.loads(client.invoke(FunctionName="probe", Payload=b"{}")["Payload"].read()) == "1"


@pytest.mark.parametrize("event", [[1, 2], "run", None, {"protocol": 1, "step": "s", "task": "os:system", "sources": {}, "target": {}}])
def test_the_handler_answers_a_malformed_event_with_an_error_and_never_raises(deployed: None, event: Any) -> None:
    result = handler(event, None)
    assert result["ok"] is False and result["error"]["message"]
