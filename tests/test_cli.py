"""The glacier command: run with progress and summary, graph, plugins; exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PIPELINES = """
    import os
    import polars as pl
    from glacier import Pipeline, Provider
    from glacier.config import LocalConfig

    provider = Provider(config=LocalConfig(root=os.environ["ROOT"]))
    local = provider.local()
    raw = provider.bucket(bucket="lake", path="raw.parquet")
    good_out = provider.bucket(bucket="lake", path="good.parquet")
    bad_out = provider.bucket(bucket="lake", path="bad.parquet")

    @local.task
    def keep(df):
        return df

    @local.task
    def explode(df):
        raise ValueError("no good")

    good = Pipeline(name="good_pipeline").source(raw).transform(keep).to(good_out)
    bad = Pipeline(name="bad_pipeline").source(raw).transform(explode).to(bad_out)

    if __name__ == "__main__":
        raise SystemExit("the CLI must not run the __main__ block")
"""


@pytest.fixture
def pipelines(tmp_path: Path) -> Path:
    import polars as pl

    (tmp_path / "lake").mkdir()
    pl.DataFrame({"x": [1, 2]}).write_parquet(tmp_path / "lake" / "raw.parquet")
    file = tmp_path / "pipes.py"
    file.write_text(textwrap.dedent(PIPELINES))
    return file


def glacier(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ROOT=str(root), COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "glacier.cli", *args], capture_output=True, text=True, env=env, cwd=root)


def test_run_prints_a_summary_and_exits_zero(pipelines: Path) -> None:
    proc = glacier("run", f"{pipelines}:good", root=pipelines.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "good_pipeline" in proc.stdout and "succeeded" in proc.stdout and "keep" in proc.stdout
    assert (pipelines.parent / "lake" / "good.parquet").exists()


def test_run_selects_by_pipeline_name_too(pipelines: Path) -> None:
    assert glacier("run", f"{pipelines}:good_pipeline", root=pipelines.parent).returncode == 0


def test_run_exits_non_zero_and_shows_the_error_when_a_step_fails(pipelines: Path) -> None:
    proc = glacier("run", f"{pipelines}:bad", root=pipelines.parent)
    assert proc.returncode == 1
    assert "failed" in proc.stdout
    assert "Step 'explode' failed" in proc.stdout and "ValueError: no good" in proc.stdout


def test_a_file_with_several_pipelines_asks_which(pipelines: Path) -> None:
    proc = glacier("run", str(pipelines), root=pipelines.parent)
    assert proc.returncode == 2
    assert "several pipelines (good, bad)" in proc.stdout


def test_unknown_pipeline_and_missing_file_are_usage_errors(pipelines: Path) -> None:
    unknown = glacier("run", f"{pipelines}:nope", root=pipelines.parent)
    assert unknown.returncode == 2, unknown.stdout + unknown.stderr
    # the console wraps at COLUMNS: compare with the line breaks folded
    assert "has no pipeline 'nope'; it defines: good, bad" in " ".join(unknown.stdout.split())
    assert not (pipelines.parent / "lake" / "good.parquet").exists()  # nothing ran

    missing = glacier("graph", "missing.py", root=pipelines.parent)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "No such pipeline file: missing.py" in " ".join(missing.stdout.split())


def test_graph_prints_mermaid(pipelines: Path) -> None:
    proc = glacier("graph", f"{pipelines}:good", root=pipelines.parent)
    assert proc.returncode == 0
    assert proc.stdout.startswith("graph LR\n")
    assert '["keep<br/>(local)"]' in proc.stdout


def test_plugins_lists_builtins_and_installed_providers(tmp_path: Path) -> None:
    proc = glacier("plugins", root=tmp_path)
    assert proc.returncode == 0
    for expected in ("glacier.plugins.builtins", "file://", "memory://", "local", "LocalConfig", "process"):
        assert expected in proc.stdout


def test_analyze_prints_the_plan_and_exits_zero(pipelines: Path) -> None:
    proc = glacier("analyze", f"{pipelines}:good", root=pipelines.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Pipeline 'good_pipeline': 1 step(s) in 1 wave(s)\n")
    assert "keep [local on local]" in proc.stdout and "output schema: x: Int64" in proc.stdout
    assert "problems: none" in proc.stdout
    assert not (pipelines.parent / "lake" / "good.parquet").exists()  # nothing ran


def test_analyze_json_carries_waves_schemas_and_problems(pipelines: Path, tmp_path: Path) -> None:
    import json

    (pipelines.parent / "lake" / "raw.parquet").unlink()  # a missing source is a problem
    proc = glacier("analyze", f"{pipelines}:good", "--json", root=pipelines.parent)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert data["pipeline"] == "good_pipeline" and data["ok"] is False
    assert data["waves"] == [["keep"]]
    assert data["steps"]["keep"]["executor"] == "local" and data["steps"]["keep"]["output_schema"] is None
    assert data["steps"]["keep"]["target"].endswith("lake/good.parquet")
    assert len(data["problems"]) == 1 and data["problems"][0].startswith("keep: cannot read the schema of source")


def test_generate_with_nothing_to_deploy_says_so_and_writes_nothing(pipelines: Path) -> None:
    proc = glacier("generate", f"{pipelines}:good", "--out", "infra", root=pipelines.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("Nothing to deploy: every step of pipeline 'good_pipeline' runs on this machine and every bucket is local")
    assert not (pipelines.parent / "infra").exists()
