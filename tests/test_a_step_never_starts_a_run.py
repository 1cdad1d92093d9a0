"""A step never starts a run: importing a script where its step runs does not run it again.

The seed writes its examples with ``result = pipeline.run(mode="local")`` at module level.
A step that runs in a worker process imports that script to find its task; without the
guard that import runs the pipeline again, which starts more workers, and so on until the
machine falls over. Every script here runs under :func:`process_tree.run_capped`, which
kills the whole process tree past a few processes, so these tests are safe to run even
against code that has the defect.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from process_tree import run_capped

from glacier import Pipeline, Provider, StepStatus
from glacier.cli import load_pipeline
from glacier.errors import GlacierError

SEED_STYLE_SCRIPT = '''
import os
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import LocalConfig

provider = Provider(config=LocalConfig(root=os.environ["LAKE"]))
local_exec = provider.local()
worker_exec = provider.serverless()

raw = provider.bucket(bucket="lake", path="raw/data.parquet")
doubled = provider.bucket(bucket="lake", path="intermediate/doubled.parquet")
output = provider.bucket(bucket="lake", path="output/total.parquet")


@{decorator}
def double(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns(pl.col("value") * 2)


@{decorator}
def total(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.select(pl.col("value").sum())


pipeline = Pipeline(name="etl").source(raw).transform(double).to(doubled).transform(total).to(output)

# Execute, at module level, as the seed does.
result = pipeline.run(mode="{mode}")
print(result.summary())
'''

#: The executors that run a step in a worker process: a task with ``timeout=`` on any
#: executor, and glacier-local's ``serverless()`` (one worker per step).
DECORATORS = {"timeout": "local_exec.task(timeout=120)", "process": "worker_exec.task()"}
#: In this process: safe to import here even where the guard is missing.
IN_PROCESS = "local_exec.task()"
STEPS = 2


def seed_style_script(tmp_path: Path, executor: str, mode: str) -> Path:
    lake = tmp_path / "lake-root"
    (lake / "lake" / "raw").mkdir(parents=True)
    pl.DataFrame({"value": [1, 2, 3]}).write_parquet(lake / "lake" / "raw" / "data.parquet")
    script = tmp_path / "seed_etl.py"
    script.write_text(textwrap.dedent(SEED_STYLE_SCRIPT.format(decorator=DECORATORS.get(executor, executor), mode=mode)))
    return script


@pytest.mark.parametrize("mode", ["local", "cloud"])
@pytest.mark.parametrize("executor", sorted(DECORATORS))
def test_a_seed_style_script_starts_one_worker_per_step(tmp_path: Path, executor: str, mode: str) -> None:
    script = seed_style_script(tmp_path, executor, mode)
    env = dict(os.environ, LAKE=str(tmp_path / "lake-root"))
    run = run_capped([sys.executable, str(script)], tmp_path, env=env)
    assert run.killed is None, f"the process tree was killed ({run.killed}); {run.workers} workers started:\n{run.stderr[-3000:]}"
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.workers <= STEPS, f"{run.workers} worker processes for {STEPS} steps"
    assert "succeeded" in run.stdout
    total = pl.read_parquet(tmp_path / "lake-root" / "lake" / "output" / "total.parquet")
    assert total["value"].to_list() == [12]


def test_a_worker_importing_the_script_skips_its_run_with_a_one_line_notice(tmp_path: Path) -> None:
    script = seed_style_script(tmp_path, "timeout", "local")
    payload = {
        "protocol": 1,
        "run_id": "test",
        "step": "double",
        "attempt": 1,
        "task": {"module": "__main__", "qualname": "double", "file": str(script)},
        "sources": {"df": {"uri": f"file://{tmp_path}/lake-root/lake/raw/data.parquet", "config": None}},
        "target": {"uri": f"file://{tmp_path}/lake-root/lake/intermediate/doubled.parquet", "config": None},
    }
    env = dict(os.environ, LAKE=str(tmp_path / "lake-root"))
    run = run_capped([sys.executable, "-m", "glacier.run.worker"], tmp_path, env=env, stdin=json.dumps(payload).encode())
    assert run.killed is None, f"the process tree was killed ({run.killed}):\n{run.stderr[-3000:]}"
    assert run.workers == 0, "the worker started workers of its own"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["ok"], result
    notices = [line for line in run.stderr.splitlines() if line.startswith("glacier: not running pipeline")]
    assert notices == [f"glacier: not running pipeline 'etl' while {script} is imported to run a step"], run.stderr
    # The script's own print after run() still works: run() gave back a result marked skipped.
    assert "run of 'etl' skipped" in run.stderr


SCRIPT_WITH_A_STEP_THAT_RUNS_A_PIPELINE = '''
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import LocalConfig

provider = Provider(config=LocalConfig(root={root!r}))
local_exec = provider.local()

a = provider.bucket(bucket="lake", path="a.parquet")
b = provider.bucket(bucket="lake", path="b.parquet")
c = provider.bucket(bucket="lake", path="c.parquet")


@local_exec.task()
def copy(df):
    return df


inner = Pipeline(name="inner").source(a).transform(copy).to(c)


@local_exec.task(timeout=120)
def starts_a_run(df):
    inner.run()
    return df


outer = Pipeline(name="outer").source(a).transform(starts_a_run).to(b)
'''


def test_a_step_that_starts_a_run_in_its_worker_fails_saying_why(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    pl.DataFrame({"value": [1]}).write_parquet(tmp_path / "lake" / "a.parquet")
    file = tmp_path / "nested_run.py"
    file.write_text(textwrap.dedent(SCRIPT_WITH_A_STEP_THAT_RUNS_A_PIPELINE.format(root=str(tmp_path))))
    result = load_pipeline(f"{file}:outer").run()
    step = result["starts_a_run"]
    assert step.status is StepStatus.FAILED
    assert "Pipeline 'inner' cannot run in a process that executes a step" in str(step.error)
    assert "Hint:" in str(step.error)
    assert not (tmp_path / "lake" / "c.parquet").exists()


def test_a_step_process_refuses_to_start_a_run(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> None:
    local = provider.local()

    @local.task
    def same(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    pipeline = Pipeline(name="p").source(provider.bucket(bucket="b", path="in.parquet")).transform(same).to(provider.bucket(bucket="b", path="out.parquet"))
    monkeypatch.setenv("GLACIER_STEP_PROCESS", "1")
    for mode in ("local", "cloud", "analyze", "generate"):
        with pytest.raises(GlacierError, match=r"(?s)Pipeline 'p' cannot run in a process that executes a step.*Hint:"):
            pipeline.run(mode=mode)


def test_a_run_while_a_task_module_is_imported_here_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process too (an executor's invoke() handles payloads here): loading a script's
    # tasks must not run its pipeline. Its tasks run in this process, so that even without
    # the guard this test starts no worker.
    from glacier.run.protocol import load_task
    from glacier.task import TaskRef

    script = seed_style_script(tmp_path, IN_PROCESS, "local")
    monkeypatch.setenv("LAKE", str(tmp_path / "lake-root"))
    func = load_task(TaskRef("__main__", "double", str(script)))
    assert func(pl.LazyFrame({"value": [1]})).collect()["value"].to_list() == [2]
    err = capsys.readouterr().err
    assert f"glacier: not running pipeline 'etl' while {script} is imported to run a step" in err
    assert not (tmp_path / "lake-root" / "lake" / "output").exists()
