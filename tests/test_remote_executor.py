"""RemoteExecutor: what every cloud's executor inherits, shown with a platform that runs here.

The platform below is a few lines: ``invoke_function`` sends the payload through JSON
to :func:`glacier.run.protocol.handle` (what every deployed handler calls), pinned to
the entry's task as a deployed function is, in a thread that it gives up on at the
entry's ``timeout`` extra, as a platform stops a function. Everything else (finding
the entry, the payload, the errors) is the base class's.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import Pipeline, Provider, StepStatus
from glacier.dag import TaskInstance
from glacier.errors import DeploymentNotFoundError, StepError, StepTimeoutError, TaskFailedError
from glacier.infra.manifest import load_deployment, write_deployment
from glacier.plugins import Deployment, DeploymentEntry, RemoteExecutor
from glacier.run.protocol import handle
from glacier.testing import tasks

TASKS_MODULE = '''
import threading

release = threading.Event()


def double(df):
    """What the deployed function runs: not the task's own function (the manifest decides)."""
    import polars as pl

    return df.with_columns((pl.col("value") * 2).alias("doubled"))


def wait_for_release(df):
    release.wait(60)
    return df
'''


class InTestFunctions(RemoteExecutor):
    """A platform whose functions run in this process."""

    kind: ClassVar[str] = "in-test"
    function_label: ClassVar[str] = "Test function"

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)
        self.payloads: list[dict[str, Any]] = []
        self.threads: list[threading.Thread] = []

    def invoke_function(self, entry: DeploymentEntry, payload: dict[str, Any]) -> dict[str, Any]:
        self.payloads.append(payload)
        sent = json.loads(json.dumps(payload))  # as it crosses the wire
        box: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: box.update(result=handle(sent, task=entry.task_ref)), daemon=True)
        self.threads.append(thread)
        thread.start()
        thread.join(float(entry.extras.get("timeout", "60")))
        if thread.is_alive():
            msg = f"Test function {entry.function_name!r} ran past its timeout of {entry.extras['timeout']}s and was stopped"
            raise StepTimeoutError(str(payload["step"]), msg, uri=payload["target"]["uri"], hint="raise its timeout")
        result: dict[str, Any] = box["result"]
        return result

    def problems(self, instance: TaskInstance) -> list[str]:
        return []


@pytest.fixture
def task_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An importable module of tasks, as a deployed function has it."""
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "remote_tasks_for_test.py").write_text(textwrap.dedent(TASKS_MODULE))
    monkeypatch.syspath_prepend(str(folder))
    import remote_tasks_for_test

    yield remote_tasks_for_test
    remote_tasks_for_test.release.set()
    sys.modules.pop("remote_tasks_for_test", None)


@pytest.fixture
def functions(provider: Provider) -> Iterator[InTestFunctions]:
    executor = InTestFunctions(provider)
    yield executor
    for thread in executor.threads:
        thread.join(10)


def entry(function: str, qualname: str, module: str = "remote_tasks_for_test", **extras: str) -> DeploymentEntry:
    return DeploymentEntry(function, module, qualname, "in-test", "in-test", extras)


def step(provider: Provider, executor: InTestFunctions, func: Any, events: pl.DataFrame, name: str | None = None) -> TaskInstance:
    source = provider.bucket(bucket="lake", path="raw/events.parquet")
    source.storage.write(events, source.uri)
    task = executor.task(name=name or func.__name__)(func)
    return TaskInstance(task=task, source=source, target=provider.bucket(bucket="lake", path=f"out/{task.name}.parquet"), name=task.name)


def test_a_step_runs_the_function_its_entry_names_and_reports_rows_bytes_and_seconds(
    provider: Provider, functions: InTestFunctions, task_module: Any, events: pl.DataFrame
) -> None:
    inst = step(provider, functions, tasks.double_value, events)
    deployment = Deployment("remote", {"double_value": entry("remote-double", "double", logs="TestLogs (remote-double)")})

    outcome = functions.run(inst, "run-1", 2, deployment=deployment)

    assert outcome.rows == events.height and outcome.bytes > 0 and outcome.seconds >= 0
    assert_frame_equal(pl.read_parquet(inst.target.uri), events.with_columns((pl.col("value") * 2).alias("doubled")))
    [sent] = functions.payloads
    assert sent["task"] == {"module": "remote_tasks_for_test", "qualname": "double", "file": None}
    assert sent["function"] == "remote-double"
    assert (sent["step"], sent["run_id"], sent["attempt"]) == ("double_value", "run-1", 2)


def test_a_task_error_names_the_function_and_where_its_logs_are(provider: Provider, functions: InTestFunctions, events: pl.DataFrame) -> None:
    inst = step(provider, functions, tasks.fail_loudly, events)
    logged = Deployment("remote", {"fail_loudly": entry("remote-fail", "fail_loudly", "glacier.testing.tasks", logs="TestLogs (/fns/remote-fail)")})
    with pytest.raises(TaskFailedError) as raised:
        functions.run(inst, "run-1", deployment=logged)
    err = raised.value
    assert err.step == "fail_loudly"
    assert "RuntimeError: contract failure" in err.what and err.what.endswith("(in Test function 'remote-fail')")
    assert err.hint is not None and err.hint.endswith("the function's logs are in TestLogs (/fns/remote-fail)")
    assert "RuntimeError" in (getattr(err, "traceback", None) or "")

    unlogged = Deployment("remote", {"fail_loudly": entry("remote-fail", "fail_loudly", "glacier.testing.tasks")})
    with pytest.raises(TaskFailedError, match=r"(?s)\(in Test function 'remote-fail'\).*see the logs of Test function 'remote-fail'"):
        functions.run(inst, "run-1", deployment=unlogged)


def test_a_platform_timeout_comes_back_as_a_timed_out_step_naming_the_function(
    provider: Provider, functions: InTestFunctions, task_module: Any, events: pl.DataFrame, tmp_path: Path
) -> None:
    inst = step(provider, functions, task_module.wait_for_release, events, name="slow")
    pipeline = Pipeline(name="remote").source(inst.source).transform(inst.task).to(inst.target)
    manifest = tmp_path / "glacier-deployment.json"
    write_deployment(Deployment("remote", {"slow": entry("remote-slow", "wait_for_release", timeout="0.2")}), manifest)

    result = pipeline.run(mode="cloud", manifest=str(manifest), state_dir=str(tmp_path / "state"))

    slow = result["slow"]
    assert slow.status is StepStatus.TIMED_OUT
    assert isinstance(slow.error, StepTimeoutError)
    # The platform's error names the function already: it comes back as it was, named once.
    assert slow.error.what == "Test function 'remote-slow' ran past its timeout of 0.2s and was stopped"


def test_cloud_mode_runs_a_pipeline_through_the_manifest_it_reads(
    provider: Provider, functions: InTestFunctions, task_module: Any, events: pl.DataFrame, tmp_path: Path
) -> None:
    inst = step(provider, functions, tasks.double_value, events)
    pipeline = Pipeline(name="remote").source(inst.source).transform(inst.task).to(inst.target)
    manifest = tmp_path / "glacier-deployment.json"
    write_deployment(Deployment("remote", {"double_value": entry("remote-double", "double")}), manifest)

    result = pipeline.run(mode="cloud", manifest=str(manifest), state_dir=str(tmp_path / "state"))

    assert result.ok, result.summary()
    assert result["double_value"].rows == events.height
    assert [p["function"] for p in functions.payloads] == ["remote-double"]


def test_a_task_without_a_deployed_function_is_refused_naming_the_task(provider: Provider, functions: InTestFunctions, events: pl.DataFrame) -> None:
    inst = step(provider, functions, tasks.double_value, events)
    other = Deployment("remote", {"another_task": entry("remote-other", "double")})
    with pytest.raises(StepError, match=r"(?s)task 'double_value' has no deployed Test function in the deployment manifest.*run generate again"):
        functions.run(inst, "run-1", deployment=other)
    assert functions.payloads == []


@pytest.mark.parametrize(
    ("written", "found"),
    [({"version": 0}, "has version 0"), ({"version": "2"}, "has version '2'"), ({}, "has no version")],
    ids=["older", "a-string", "unversioned"],
)
def test_a_manifest_of_another_version_is_refused(tmp_path: Path, written: dict[str, Any], found: str) -> None:
    manifest = tmp_path / "glacier-deployment.json"
    data = {**Deployment("remote", {"t": entry("remote-t", "double")}).to_dict(), **written}
    if not written:
        del data["version"]
    manifest.write_text(json.dumps(data))
    with pytest.raises(DeploymentNotFoundError, match=rf"(?s)pipeline 'remote' at .*glacier-deployment.json {found}; this Glacier reads version 1 only.*generate again"):
        load_deployment("remote", manifest)


def test_a_written_manifest_reads_back_as_the_same_deployment(tmp_path: Path) -> None:
    deployment = Deployment(
        "remote",
        {"t": entry("remote-t", "double", url="http://127.0.0.1:9/t", logs="TestLogs (t)"), "u": entry("remote-u", "wait_for_release")},
        generated=1767225600.0,
        out=str(tmp_path),
    )
    write_deployment(deployment, tmp_path / "m.json")
    assert load_deployment("remote", tmp_path / "m.json") == deployment
    assert json.loads((tmp_path / "m.json").read_text())["functions"]["t"]["extras"]["url"] == "http://127.0.0.1:9/t"
