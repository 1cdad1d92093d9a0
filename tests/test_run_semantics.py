"""Retries, timeouts, caching, resume, atomic commits and run records, with real processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from local_buckets import path_of, read, write

from glacier import Pipeline, Provider, StepStatus, hookimpl
from glacier.errors import StepTimeoutError, TaskFailedError
from glacier.plugins.registry import get_plugin_manager
from glacier.plugins.payload import PROTOCOL_VERSION
from glacier.run.history import RunStore
from glacier.plugins.storage import TEMP_MARKER

# -- tasks at module level, so worker processes can import them -----------------------


def flaky(df: pl.LazyFrame) -> pl.LazyFrame:
    """Fails until it has been called FLAKY_FAILS times (counted in a file)."""
    counter = Path(os.environ["FLAKY_COUNTER"])
    calls = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(calls))
    if calls <= int(os.environ.get("FLAKY_FAILS", "2")):
        raise ConnectionError(f"transient failure #{calls}")
    return df


def always_fails(df: pl.LazyFrame) -> pl.LazyFrame:
    """Fails every time, noting when each attempt started (in FLAKY_STARTS, if set)."""
    if "FLAKY_STARTS" in os.environ:
        with open(os.environ["FLAKY_STARTS"], "a") as starts:
            starts.write(f"{time.monotonic()}\n")
    raise ConnectionError("still down")


def sleeps(df: pl.LazyFrame) -> pl.LazyFrame:
    time.sleep(60)
    return df


def big_rewrite(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns((pl.col("v") + 1).alias("v"))


class Recorder:
    """A lifecycle plugin that records what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.errors: list[BaseException] = []

    @hookimpl
    def glacier_step_started(self, run, step, attempt) -> None:  # noqa: ANN001
        self.events.append(("started", step.name, attempt))

    @hookimpl
    def glacier_step_failed(self, run, step, error, attempt, will_retry) -> None:  # noqa: ANN001
        self.events.append(("failed", step.name, attempt, will_retry))
        self.errors.append(error)


@pytest.fixture
def recorder():  # noqa: ANN201
    rec = Recorder()
    get_plugin_manager().register(rec, name="test-recorder")
    yield rec
    get_plugin_manager().unregister(name="test-recorder")


def one_step(provider: Provider, func, *, executor: str = "local", **options):  # noqa: ANN001, ANN003, ANN201
    ex = provider.local() if executor == "local" else provider.serverless()
    task = ex.task(name=func.__name__, **options)(func)
    src = provider.bucket(bucket="lake", path="in.parquet")
    out = provider.bucket(bucket="lake", path="out.parquet")
    write(src, pl.DataFrame({"v": [1, 2, 3]}))
    return Pipeline("one", retry_backoff=0.01).source(src).transform(task).to(out), out


# -- retries -----------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["local", "serverless"])
def test_retries_turn_two_failures_into_a_success_on_the_third_attempt(provider, tmp_path, monkeypatch, recorder, executor) -> None:  # noqa: ANN001
    monkeypatch.setenv("FLAKY_COUNTER", str(tmp_path / "calls"))
    pipeline, out = one_step(provider, flaky, executor=executor, retries=2)
    result = pipeline.run()
    assert result.ok, result.summary()
    assert result["flaky"].attempts == 3
    assert [e for e in recorder.events if e[0] == "failed"] == [("failed", "flaky", 1, True), ("failed", "flaky", 2, True)]
    assert [e[2] for e in recorder.events if e[0] == "started"] == [1, 2, 3]
    record = RunStore().load(result.run_id)
    assert record["steps"][0]["attempts"] == 3 and record["steps"][0]["status"] == "succeeded"


def test_when_every_attempt_fails_the_error_names_the_step_and_the_attempts(provider, tmp_path, monkeypatch, recorder) -> None:  # noqa: ANN001
    monkeypatch.setenv("FLAKY_COUNTER", str(tmp_path / "calls"))
    pipeline, out = one_step(provider, flaky, retries=1)
    result = pipeline.run()
    step = result["flaky"]
    assert step.status is StepStatus.FAILED and step.attempts == 2
    assert isinstance(step.error, TaskFailedError)
    assert "Step 'flaky' failed" in str(step.error)
    assert "transient failure #2" in str(step.error) and "(after 2 attempts)" in str(step.error)
    assert recorder.events[-1] == ("failed", "flaky", 2, False)


# -- timeouts ------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["local", "serverless"])
def test_a_step_past_its_timeout_is_stopped_reported_and_leaves_the_target(provider, executor) -> None:  # noqa: ANN001
    pipeline, out = one_step(provider, sleeps, executor=executor, timeout=2)
    write(out, pl.DataFrame({"old": [True]}))
    started = time.monotonic()
    result = pipeline.run()
    elapsed = time.monotonic() - started
    step = result["sleeps"]
    assert step.status is StepStatus.TIMED_OUT
    assert isinstance(step.error, StepTimeoutError) and "timeout of 2s" in str(step.error)
    assert 2 <= elapsed < 60  # stopped at its timeout, long before the task's 60 s sleep would end
    assert read(out).to_dict(as_series=False) == {"old": [True]}


def test_a_timed_out_attempt_counts_as_a_failed_attempt_for_retries(provider, recorder) -> None:  # noqa: ANN001
    pipeline, _ = one_step(provider, sleeps, timeout=1, retries=1)
    result = pipeline.run()
    assert result["sleeps"].status is StepStatus.TIMED_OUT
    assert result["sleeps"].attempts == 2
    assert "(after 2 attempts)" in str(result["sleeps"].error)
    # Plugins are told of each timed-out attempt as of any failed one, retry first.
    assert recorder.events == [
        ("started", "sleeps", 1),
        ("failed", "sleeps", 1, True),
        ("started", "sleeps", 2),
        ("failed", "sleeps", 2, False),
    ]
    assert all(isinstance(e, StepTimeoutError) for e in recorder.errors), recorder.errors


# -- atomic commits under SIGKILL --------------------------------------------------------


def test_a_worker_killed_at_random_moments_never_leaves_a_partial_target(provider, tmp_path) -> None:  # noqa: ANN001
    src = provider.bucket(bucket="lake", path="big.parquet")
    out = provider.bucket(bucket="lake", path="big_out.parquet")
    rows = 3_000_000
    write(src, pl.select(v=pl.int_range(rows, dtype=pl.Int64), w=pl.int_range(rows).cast(pl.Float64).sqrt()))
    old = pl.DataFrame({"v": [-1], "w": [0.0]})
    write(out, old)
    payload = json.dumps({
        "protocol": PROTOCOL_VERSION, "run_id": "kill", "step": "big_rewrite", "attempt": 1,
        "task": {"module": "not_by_name", "qualname": "big_rewrite", "file": __file__},
        "sources": {"df": {"uri": src.uri, "config": None}}, "target": {"uri": out.uri, "config": None},
    }).encode()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    # How long a full write takes here, so the kills land before, during and after it.
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "glacier.run.worker"], input=payload, env=env, check=True, capture_output=True)
    full = time.monotonic() - t0
    write(out, old)
    rng = random.Random(1234)
    outcomes = {"old": 0, "new": 0}
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-m", "glacier.run.worker"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        proc.stdin.write(payload)
        proc.stdin.close()
        time.sleep(rng.uniform(0.1, full * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = read(out)  # must always be a complete, readable parquet file
        if got.equals(old):
            outcomes["old"] += 1
        else:
            assert got.height == rows and got["v"][0] == 1 and got["v"][-1] == rows
            outcomes["new"] += 1
            write(out, old)
    assert outcomes["old"] > 0  # the kills did land mid-run
    # The random kills may all land before or after the write: one more lands inside
    # it for certain, once the writer's temporary file is there (polled, not timed).
    folder = Path(path_of(out)).parent

    def debris() -> list[str]:
        return [p for p in os.listdir(folder) if TEMP_MARKER in p]

    caught: list[str] = []
    for _ in range(10):  # a writer may finish between two polls: start another
        before = set(debris())
        proc = subprocess.Popen([sys.executable, "-m", "glacier.run.worker"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        proc.stdin.write(payload)
        proc.stdin.close()
        while proc.poll() is None and not (caught := sorted(set(debris()) - before)):
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = read(out)  # whole, whichever it is
        if caught and proc.returncode == -signal.SIGKILL and set(caught) <= set(debris()):
            break  # killed while its temporary was there: before the commit
        assert got.equals(old) or (got.height == rows and got["v"][-1] == rows)
        caught = []
        write(out, old)
    assert caught, "no kill landed while the target was being written"
    assert got.equals(old)  # killed mid-write: the old target, whole
    # Debris of the killed writers is cleaned by the next write to that target.
    done = subprocess.run([sys.executable, "-m", "glacier.run.worker"], input=payload, env=env, capture_output=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1])["ok"]
    assert [p for p in os.listdir(Path(path_of(out)).parent) if TEMP_MARKER in p] == []


# -- cache, resume, concurrent runs: whole runs in fresh processes -----------------------

PIPELINE = '''
import os
import time
from pathlib import Path
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import LocalConfig

provider = Provider(config=LocalConfig(root=os.environ["ROOT"]))
local = provider.local()
b = {{n: provider.bucket(bucket="lake", path=f"{{n}}.parquet") for n in ("raw_a", "raw_b", "a1", "a2", "a3", "b1")}}


def log(name):
    with open(os.environ["LOG"], "a") as f:
        f.write(name + "\\n")


def rendezvous():
    """With BARRIER set, wait here until RUNS runs have arrived: proof that they overlap."""
    folder = os.environ.get("BARRIER")
    if not folder:
        return
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 60  # a generous limit against a hang, not a timing check
    while len(os.listdir(folder)) < int(os.environ["RUNS"]):
        if time.monotonic() > deadline:
            raise RuntimeError("the other runs never reached step1")
        time.sleep(0.01)


@local.task(cache={cache})
def step1(df):
    log("step1")
    rendezvous()
    return df.filter(pl.col("v") > 0)


@local.task(cache={cache})
def step2(df):
    log("step2")
    if os.path.exists(os.environ["ROOT"] + "/FAIL_STEP2"):
        raise RuntimeError("injected fault")
    return df.with_columns(w=pl.col("v") * {factor})


@local.task(cache={cache})
def step3(df):
    log("step3")
    return df.select(pl.col("w").sum())


@local.task(cache={cache})
def other(df):
    log("other")
    return df


chain = Pipeline("chain").source(b["raw_a"]).transform(step1).to(b["a1"]).transform(step2).to(b["a2"]).transform(step3).to(b["a3"])
side = Pipeline("side").source(b["raw_b"]).transform(other).to(b["b1"])
both = Pipeline.compose(chain, side, name="both")
'''


@pytest.fixture
def project(tmp_path: Path):  # noqa: ANN201
    """A pipeline file and its data; run(...) runs `glacier run` in a fresh process."""
    root = tmp_path / "data"
    (root / "lake").mkdir(parents=True)
    pl.DataFrame({"v": [1, 2, 3, -1]}).write_parquet(root / "lake" / "raw_a.parquet")
    pl.DataFrame({"v": [7]}).write_parquet(root / "lake" / "raw_b.parquet")
    file = tmp_path / "pipes.py"
    logfile = tmp_path / "calls.log"

    class Project:
        def __init__(self) -> None:
            self.root, self.file, self.log = root, file, logfile
            self.write_code()

        def write_code(self, *, cache: bool = True, factor: int = 2) -> None:
            file.write_text(textwrap.dedent(PIPELINE.format(cache=cache, factor=factor)))

        def run(self, *args: str, name: str = "both") -> subprocess.CompletedProcess[str]:
            env = dict(os.environ, ROOT=str(root), LOG=str(logfile), COLUMNS="200")
            return subprocess.run([sys.executable, "-m", "glacier.cli", "run", f"{file}:{name}", *args], capture_output=True, text=True, env=env, cwd=tmp_path)

        def calls(self) -> list[str]:
            text = logfile.read_text() if logfile.exists() else ""
            logfile.unlink(missing_ok=True)
            return sorted(text.split())

    return Project()


def test_cache_skips_unchanged_steps_and_reruns_exactly_the_affected_ones(project) -> None:  # noqa: ANN001
    assert project.run().returncode == 0
    assert project.calls() == ["other", "step1", "step2", "step3"]

    second = project.run()
    assert second.returncode == 0 and "cached" in second.stdout
    assert project.calls() == []  # nothing executed: no side effect at all

    project.write_code(factor=3)  # change step2's code
    assert project.run().returncode == 0
    assert project.calls() == ["step2", "step3"]
    assert pl.read_parquet(project.root / "lake" / "a3.parquet")["w"].to_list() == [18]

    time.sleep(0.01)
    pl.DataFrame({"v": [8, 9]}).write_parquet(project.root / "lake" / "raw_b.parquet")  # touch one input
    assert project.run().returncode == 0
    assert project.calls() == ["other"]


def test_a_cached_step_whose_target_was_changed_runs_again(project) -> None:  # noqa: ANN001
    assert project.run().returncode == 0
    project.calls()
    pl.DataFrame({"w": [0]}).write_parquet(project.root / "lake" / "a3.parquet")
    assert project.run().returncode == 0
    assert project.calls() == ["step3"]


def test_resume_runs_only_the_failed_step_and_what_follows(project) -> None:  # noqa: ANN001
    project.write_code(cache=False)
    (project.root / "FAIL_STEP2").touch()
    failed = project.run(name="chain")
    assert failed.returncode == 1 and "injected fault" in failed.stdout
    assert project.calls() == ["step1", "step2"]

    (project.root / "FAIL_STEP2").unlink()
    resumed = project.run("--resume", name="chain")
    assert resumed.returncode == 0, resumed.stdout
    assert project.calls() == ["step2", "step3"]  # step1 did not run again
    assert "reused" in resumed.stdout and "Resuming run" in resumed.stdout

    again = project.run("--resume", name="chain")
    assert again.returncode == 0
    assert project.calls() == []
    assert "Nothing to resume" in again.stdout


def test_by_default_a_failure_stops_only_its_downstream(project) -> None:  # noqa: ANN001
    project.write_code(cache=False)
    (project.root / "FAIL_STEP2").touch()
    assert project.run().returncode == 1
    assert project.calls() == ["other", "step1", "step2"]
    records = RunStore(os.environ["GLACIER_STATE_DIR"]).list("both")
    statuses = {s["name"]: s["status"] for s in records[-1]["steps"]}
    assert statuses == {"step1": "succeeded", "other": "succeeded", "step2": "failed", "step3": "skipped"}


def test_fail_fast_stops_everything_at_the_first_failure(provider) -> None:  # noqa: ANN001
    local = provider.local()
    src = provider.bucket(bucket="l", path="s.parquet")
    write(src, pl.DataFrame({"v": [1]}))
    bad = Pipeline("bad").source(provider.bucket(bucket="l", path="missing.parquet")).transform(local.task(name="bad")(big_rewrite)).to(provider.bucket(bucket="l", path="x.parquet"))
    later = Pipeline("later").source(src).transform(local.task(name="first")(big_rewrite)).to(provider.bucket(bucket="l", path="y.parquet"))
    later.transform(local.task(name="second")(big_rewrite)).to(provider.bucket(bucket="l", path="z.parquet"))
    result = Pipeline.compose(bad, later, name="ff").run(fail_fast=True, max_workers=1)
    assert result["bad"].status is StepStatus.FAILED
    assert result["second"].status is StepStatus.CANCELLED


def test_two_runs_at_once_on_the_same_targets_both_finish_whole(project) -> None:  # noqa: ANN001
    project.write_code(cache=False)
    barrier = project.root.parent / "barrier"
    barrier.mkdir()
    # Each run waits in step1 until both have arrived there, so they do overlap.
    env = dict(os.environ, ROOT=str(project.root), LOG=str(project.log), BARRIER=str(barrier), RUNS="2")
    cmd = [sys.executable, "-m", "glacier.cli", "run", f"{project.file}:both"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stdout.read().decode() if proc.stdout else ""
    assert len(os.listdir(barrier)) == 2  # both runs were inside step1 at once
    assert project.calls() == ["other", "other", "step1", "step1", "step2", "step2", "step3", "step3"]
    expected = pl.DataFrame({"w": [12]})
    assert pl.read_parquet(project.root / "lake" / "a3.parquet").equals(expected)
    assert pl.read_parquet(project.root / "lake" / "a1.parquet")["v"].to_list() == [1, 2, 3]
    records = RunStore(os.environ["GLACIER_STATE_DIR"]).list("both")
    assert len(records) == 2 and all(r["state"] == "finished" and r["ok"] for r in records)
    assert len({r["run_id"] for r in records}) == 2
    assert [p for p in os.listdir(project.root / "lake") if TEMP_MARKER in p] == []


def test_runs_lists_and_shows_records(project) -> None:  # noqa: ANN001
    assert project.run().returncode == 0
    env = dict(os.environ, COLUMNS="200")
    listing = subprocess.run([sys.executable, "-m", "glacier.cli", "runs"], capture_output=True, text=True, env=env)
    assert "both" in listing.stdout and "ok" in listing.stdout
    run_id = RunStore().list("both")[-1]["run_id"]
    shown = subprocess.run([sys.executable, "-m", "glacier.cli", "runs", "show", run_id, "--json"], capture_output=True, text=True, env=env)
    record = json.loads(shown.stdout)
    step = {s["name"]: s for s in record["steps"]}["step1"]
    assert step["status"] == "succeeded" and step["rows"] == 3 and step["input_fingerprints"] and step["output_fingerprint"]


def test_the_state_directory_is_settable_per_pipeline_and_by_environment(provider, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    src, out = provider.bucket(bucket="l", path="s.parquet"), provider.bucket(bucket="l", path="o.parquet")
    write(src, pl.DataFrame({"v": [1]}))
    task = provider.local().task(name="copy")(big_rewrite)
    own = tmp_path / "own-state"
    result = Pipeline("mine", state_dir=str(own)).source(src).transform(task).to(out).run()
    assert (own / "runs" / "mine" / f"{result.run_id}.json").exists()
    env_dir = tmp_path / "env-state"
    monkeypatch.setenv("GLACIER_STATE_DIR", str(env_dir))
    again = Pipeline("mine").source(src).transform(task).to(out).run()
    assert (env_dir / "runs" / "mine" / f"{again.run_id}.json").exists()


# -- backoff -------------------------------------------------------------------------


def test_retries_wait_an_exponential_backoff_with_full_jitter(provider, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Each wait is drawn from [0, base * 2**(attempt - 1)], and the runner waits what was drawn."""
    import glacier.run.runner as runner

    draws: list[tuple[float, float, float]] = []

    def uniform(low: float, high: float) -> float:
        value = high  # the longest wait each draw allows, so that the waits can be measured
        draws.append((low, high, value))
        return value

    monkeypatch.setattr(runner.random, "uniform", uniform)
    starts = tmp_path / "starts"
    monkeypatch.setenv("FLAKY_STARTS", str(starts))
    pipeline, _ = one_step(provider, always_fails, retries=3)
    pipeline.config["retry_backoff"] = 0.1
    result = pipeline.run()
    assert result["always_fails"].attempts == 4
    assert [(low, high) for low, high, _ in draws] == [(0, 0.1), (0, 0.2), (0, 0.4)]
    times = [float(t) for t in starts.read_text().split()]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert all(gap >= wait for gap, (_, _, wait) in zip(gaps, draws)), (gaps, draws)


def test_the_backoff_jitter_spreads_the_waits(provider, monkeypatch) -> None:  # noqa: ANN001
    """With the real random draws, the waits differ and stay within their bound."""
    import glacier.run.runner as runner

    real = runner.random.uniform
    drawn: list[tuple[float, float]] = []

    def spy(low: float, high: float) -> float:
        value = real(low, high)
        drawn.append((high, value))
        return value

    monkeypatch.setattr(runner.random, "uniform", spy)
    pipeline, _ = one_step(provider, always_fails, retries=12)
    pipeline.config["retry_backoff"] = 0.0001
    assert pipeline.run()["always_fails"].attempts == 13
    assert all(0 <= value <= high for high, value in drawn)
    assert len({value for _, value in drawn}) == len(drawn) == 12
