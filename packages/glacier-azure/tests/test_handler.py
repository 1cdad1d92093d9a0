"""The function app's step function, called in this process with the azure-functions types: a message never chooses the code it runs.

A deployed app runs only the task named by its ``GLACIER_TASK`` and rebuilds only config
classes of installed plugins; every hostile payload here would create a marker file if
it were obeyed. (test_cloud_mode.py runs the same function in FunctionsHost.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

TASK = "glacier.testing.tasks:double_value"


def call(body: bytes) -> dict[str, Any]:
    """Deliver ``body`` to the app's function as the host does; return what its output binding got."""
    import azure.functions as func

    from glacier_azure.handler import build_app

    (function,) = build_app().get_functions()

    class Out(func.Out[str]):
        value = ""

        def set(self, val: str) -> None:
            self.value = val

        def get(self) -> str:
            return self.value

    out = Out()
    function.get_user_function()(msg=func.QueueMessage(id="m", body=body), result=out)
    result: dict[str, Any] = json.loads(out.get())
    return result


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


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process stands in for the function app deployed for TASK."""
    monkeypatch.setenv("GLACIER_TASK", TASK)


def test_the_app_runs_the_task_it_was_deployed_for(tmp_path: Path, deployed: None) -> None:
    result = call(json.dumps(payload(tmp_path)).encode())
    assert result["ok"] is True and result["rows"] == 2
    assert pl.read_parquet(tmp_path / "out.parquet")["doubled"].to_list() == [2, 4]


def test_an_app_without_glacier_task_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLACIER_TASK", raising=False)
    result = call(json.dumps(payload(tmp_path)).encode())
    assert result["ok"] is False and "GLACIER_TASK" in result["error"]["message"]
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("kind", ["another module", "another task of the module", "a file path", "a config type no plugin contributes"])
def test_a_hostile_message_is_refused_and_runs_nothing(tmp_path: Path, deployed: None, kind: str) -> None:
    marker = tmp_path / "obeyed"
    script = tmp_path / "evil.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\ndef double_value(df):\n    return df\n")
    tasks = {
        "another module": {"module": "os", "qualname": "system", "file": None},
        "another task of the module": {"module": "glacier.testing.tasks", "qualname": "fail_loudly", "file": None},
        "a file path": {"module": "glacier.testing.tasks", "qualname": "double_value", "file": str(script)},
    }
    if kind in tasks:
        body = payload(tmp_path, task=tasks[kind])
    else:
        body = payload(tmp_path, config={"type": "subprocess:run", "fields": {"args": ["touch", str(marker)]}})
    result = call(json.dumps(body).encode())
    assert result["ok"] is False and result["error"]["message"]
    assert not marker.exists() and not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"run"', b"null", b'{"protocol": 1, "step": "s", "task": "os:system", "sources": {}, "target": {}}'],
                         ids=["not-json", "a-list", "a-string", "null", "bad-fields"])  # fmt: skip
def test_a_malformed_message_is_answered_with_an_error_and_never_raises(deployed: None, body: bytes) -> None:
    result = call(body)
    assert result["ok"] is False and result["error"]["message"]


def test_inside_a_function_app_the_process_is_marked_as_one_that_runs_steps() -> None:
    # Importing the handler in a test process marks nothing; inside a function app it does,
    # so a task module's pipeline.run() at module level is skipped there.
    probe = "import os, glacier_azure.handler; print(os.environ.get('GLACIER_STEP_PROCESS'))"
    inside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env={"FUNCTIONS_WORKER_RUNTIME": "python", "PATH": "/usr/bin:/bin"})
    outside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert (inside.stdout.strip(), outside.stdout.strip()) == ("1", "None"), inside.stderr + outside.stderr
