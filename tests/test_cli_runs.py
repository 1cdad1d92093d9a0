"""``glacier runs`` as a person reads it, and the run options that choose where and how.

Every test drives the real command in a subprocess, on pipelines written to a
temporary directory, and reads what the terminal shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

PIPELINES = """
    import os
    import signal
    import time
    from pathlib import Path
    from glacier import Pipeline, Provider
    from glacier.config import LocalConfig

    provider = Provider(config=LocalConfig(root=os.environ["ROOT"]))
    local = provider.local()
    lake = lambda name: provider.bucket(bucket="lake", path=name)

    @local.task
    def keep(df):
        return df

    @local.task
    def explode(df):
        raise ValueError("no good")

    @local.task
    def slow_first(df):
        time.sleep(1.2)  # past the record's one-second throttle, so its success is on disk
        return df

    @local.task
    def die(df):
        os.kill(os.getpid(), signal.SIGKILL)  # the machine goes away mid-run
        return df

    @local.task
    def after(df):
        return df

    def meets(name, other):
        # Each side waits (up to 3 s) for the other to be running: both meet only if they run at once.
        here, there = Path(os.environ["ROOT"], name), Path(os.environ["ROOT"], other)
        here.touch()
        deadline = time.monotonic() + 3
        while not there.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        met = there.exists()
        if not met:
            here.unlink()  # gone before the next step starts, so it finds no one either
        with open(os.path.join(os.environ["ROOT"], "meetings.log"), "a") as log:
            log.write(f"{name} {'met' if met else 'alone'}\\n")

    @local.task
    def left(df):
        meets("left", "right")
        return df

    @local.task
    def right(df):
        meets("right", "left")
        return df

    good = Pipeline(name="good_pipeline").source(lake("raw.parquet")).transform(keep).to(lake("good.parquet"))
    bad = Pipeline(name="bad_pipeline").source(lake("raw.parquet")).transform(explode).to(lake("bad.parquet"))
    killed = (
        Pipeline(name="killed").source(lake("raw.parquet")).transform(slow_first).to(lake("first.parquet"))
        .transform(die).to(lake("dead.parquet")).transform(after).to(lake("after.parquet"))
    )
    pair = Pipeline.compose(
        Pipeline(name="l").source(lake("raw.parquet")).transform(left).to(lake("left.parquet")),
        Pipeline(name="r").source(lake("raw.parquet")).transform(right).to(lake("right.parquet")),
        name="pair",
    )
"""


@pytest.fixture
def pipes(tmp_path: Path) -> Path:
    (tmp_path / "lake").mkdir()
    pl.DataFrame({"x": [1, 2]}).write_parquet(tmp_path / "lake" / "raw.parquet")
    file = tmp_path / "pipes.py"
    file.write_text(textwrap.dedent(PIPELINES))
    return file


def glacier(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ROOT=str(root), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "glacier.cli", *args], capture_output=True, text=True, env=env, cwd=root, timeout=120)


def rows(text: str) -> dict[str, list[str]]:
    """A rendered table's rows by their first cell."""
    table = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] and cells[0] not in ("step", "run id"):
            table[cells[0]] = cells
    return table


def run_ids(state: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["run_id"] for p in (state / "runs").glob("*/*.json"))


def test_runs_show_reads_as_a_table_with_never_ran_rows_and_takes_a_unique_prefix(pipes: Path) -> None:
    state = pipes.parent / "state"
    killed = glacier("run", f"{pipes}:killed", "--state-dir", str(state), root=pipes.parent)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    (run_id,) = run_ids(state)

    shown = glacier("runs", "show", run_id[:-3], "--state-dir", str(state), root=pipes.parent)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"killed · run {run_id} · interrupted" in shown.stdout
    table = rows(shown.stdout)
    assert table["slow_first"][1:3] == ["succeeded", "1"]
    assert table["die"][1:3] == ["never ran", "0"]
    assert table["after"][1:3] == ["never ran", "0"]

    as_json = glacier("runs", "show", run_id, "--json", "--state-dir", str(state), root=pipes.parent)
    assert json.loads(as_json.stdout)["pending"] == ["die", "after"]


def test_runs_show_of_an_unknown_or_ambiguous_id_is_a_usage_error(pipes: Path) -> None:
    state = pipes.parent / "state"
    for _ in range(2):
        assert glacier("run", f"{pipes}:good", "--state-dir", str(state), root=pipes.parent).returncode == 0
    unknown = glacier("runs", "show", "19990101", "--state-dir", str(state), root=pipes.parent)
    assert unknown.returncode == 2
    assert "no run with id '19990101'" in unknown.stdout
    ambiguous = glacier("runs", "show", "2", "--state-dir", str(state), root=pipes.parent)
    assert ambiguous.returncode == 2
    assert "2 runs with id '2'" in ambiguous.stdout


def test_runs_list_filters_by_pipeline_and_keeps_the_latest_limit(pipes: Path) -> None:
    state = pipes.parent / "state"
    assert glacier("run", f"{pipes}:good", "--state-dir", str(state), root=pipes.parent).returncode == 0
    assert glacier("run", f"{pipes}:bad", "--state-dir", str(state), root=pipes.parent).returncode == 1
    assert glacier("run", f"{pipes}:good", "--state-dir", str(state), root=pipes.parent).returncode == 0
    ids = [r["run_id"] for r in sorted((json.loads(p.read_text()) for p in (state / "runs").glob("*/*.json")), key=lambda r: r["started"])]

    everything = rows(glacier("runs", "--state-dir", str(state), root=pipes.parent).stdout)
    assert list(everything) == ids
    assert [everything[i][5] for i in ids] == ["ok", "failed", "ok"]
    assert everything[ids[1]][6] == "1 failed"

    good = rows(glacier("runs", "--pipeline", "good_pipeline", "--state-dir", str(state), root=pipes.parent).stdout)
    assert list(good) == [ids[0], ids[2]]
    latest = rows(glacier("runs", "--limit", "1", "--state-dir", str(state), root=pipes.parent).stdout)
    assert list(latest) == [ids[2]]


def test_state_dir_sends_the_records_there_and_nowhere_else(pipes: Path) -> None:
    default = Path(os.environ["GLACIER_STATE_DIR"])
    state = pipes.parent / "elsewhere"
    assert glacier("run", f"{pipes}:good", "--state-dir", str(state), root=pipes.parent).returncode == 0
    assert len(run_ids(state)) == 1
    assert not (default / "runs").exists() or not list((default / "runs").glob("*/*.json"))
    assert "No runs recorded in" in glacier("runs", root=pipes.parent).stdout  # the default holds none


@pytest.mark.parametrize(("workers", "expected"), [("1", ["left alone", "right alone"]), ("2", ["left met", "right met"])])
def test_max_workers_bounds_how_many_steps_run_at_once(pipes: Path, workers: str, expected: list[str]) -> None:
    proc = glacier("run", f"{pipes}:pair", "--max-workers", workers, root=pipes.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted((pipes.parent / "meetings.log").read_text().splitlines()) == expected
