"""A run that is killed or interrupted: no orphan worker, no late commit, an honest record.

Each test starts a real ``glacier run`` (or a script calling ``Pipeline.run``) on a
pipeline whose step announces that it started (a marker file holding its pid) and then
waits for a release file, so the test knows the step is in flight without sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

PIPELINE = """
    import os
    import time
    from pathlib import Path

    import polars as pl

    from glacier import Pipeline, Provider
    from glacier.config import LocalConfig

    ROOT = Path(os.environ["ROOT"])
    provider = Provider(config=LocalConfig(root=str(ROOT)))
    local = provider.local()
    raw = provider.bucket(bucket="lake", path="raw.parquet")
    out = provider.bucket(bucket="lake", path="out.parquet")


    def hold(df):
        (ROOT / "started").write_text(str(os.getpid()))
        deadline = time.monotonic() + 60
        while not (ROOT / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return df.with_columns(tag=pl.lit("new"))


    @local.task(timeout=120)
    def slow_in_worker(df):
        return hold(df)


    @local.task
    def slow_in_thread(df):
        return hold(df)


    @local.task(retries=3)
    def flaky(df):
        with open(ROOT / "attempts", "a") as log:
            log.write("attempt\\n")
        raise RuntimeError("not this time")


    in_worker = Pipeline(name="etl").source(raw).transform(slow_in_worker).to(out)
    in_thread = Pipeline(name="etl_thread").source(raw).transform(slow_in_thread).to(out)
    retrying = Pipeline(name="etl_retry", retry_backoff=60).source(raw).transform(flaky).to(out)
"""

# A script that runs the pipeline from Python. The run is under the __main__ guard: a
# worker loads this file under another name, so it never runs the pipeline again.
SCRIPT = """
    import json
    import sys

    from etl_pipes import in_worker

    if __name__ == "__main__":
        try:
            in_worker.run()
        except KeyboardInterrupt as exc:
            print(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
            sys.exit(130)
        print("the run returned")
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not: it can no longer do anything)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds:g}s: {what}")
        time.sleep(0.02)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    (tmp_path / "lake").mkdir()
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(tmp_path / "lake" / "raw.parquet")
    pl.DataFrame({"x": [0]}).write_parquet(tmp_path / "lake" / "out.parquet")  # the previous result
    (tmp_path / "etl_pipes.py").write_text(textwrap.dedent(PIPELINE))
    (tmp_path / "api_run.py").write_text(textwrap.dedent(SCRIPT))
    return tmp_path


@pytest.fixture
def start(lake: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a command in ``lake`` with SIGINT's default action, and end it after the test."""
    started: list[subprocess.Popen[str]] = []

    def run(*argv: str) -> subprocess.Popen[str]:
        env = dict(os.environ, ROOT=str(lake), GLACIER_STATE_DIR=str(lake / "state"), COLUMNS="160")
        proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=lake,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A shell may start tests with SIGINT ignored; Ctrl-C must reach Python here.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    marker = lake / "started"
    if marker.exists():  # a worker left behind by a failing test must not outlive it
        pid = int(marker.read_text() or 0)
        if pid and pid != os.getpid() and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _step_in_flight(lake: Path, proc: subprocess.Popen[str]) -> int:
    """Wait until the step has started and return the pid it runs in."""
    _wait_for(lambda: (lake / "started").exists() or proc.poll() is not None, 60, "the step started")
    assert proc.poll() is None, proc.communicate()
    return int((lake / "started").read_text())


def _record(lake: Path) -> dict[str, object]:
    (file,) = (lake / "state" / "runs").glob("*/*.json")
    data: dict[str, object] = json.loads(file.read_text())
    return data


def _runs_listing(lake: Path) -> str:
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "glacier.cli", "runs", "--state-dir", str(lake / "state")], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_killing_glacier_run_takes_its_worker_along_and_the_record_reads_interrupted(lake: Path, start: Callable[..., subprocess.Popen[str]]) -> None:
    before = (lake / "lake" / "out.parquet").read_bytes()
    cli = start("-m", "glacier.cli", "run", "etl_pipes.py:in_worker")
    worker = _step_in_flight(lake, cli)
    assert worker != cli.pid

    cli.kill()
    cli.wait(timeout=30)
    _wait_for(lambda: not _alive(worker), 10, f"the orphaned worker {worker} exited")

    (lake / "release").write_text("")  # were anything left to finish the step, it could now
    assert (lake / "lake" / "out.parquet").read_bytes() == before
    assert _record(lake)["state"] == "running"  # as the killed process left it
    listing = _runs_listing(lake)
    assert "interrupted" in listing and "running" not in listing, listing


def test_ctrl_c_stops_the_worker_step_and_says_so_in_one_line(lake: Path, start: Callable[..., subprocess.Popen[str]]) -> None:
    before = (lake / "lake" / "out.parquet").read_bytes()
    cli = start("-m", "glacier.cli", "run", "etl_pipes.py:in_worker")
    worker = _step_in_flight(lake, cli)

    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=30)

    assert cli.returncode == 130, out + err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    record = _record(lake)
    assert lines == [
        f"interrupted: run {record['run_id']} of 'etl' stopped; 1 step was in flight, its target was left as it was; "
        "glacier run etl_pipes.py:in_worker --resume continues"
    ]
    assert not _alive(worker)
    assert (lake / "lake" / "out.parquet").read_bytes() == before
    assert record["state"] == "interrupted"
    assert [(s["name"], s["status"]) for s in record["steps"]] == [("slow_in_worker", "interrupted")]  # type: ignore[attr-defined, index]
    assert "interrupted" in _runs_listing(lake)


def test_ctrl_c_does_not_wait_for_an_in_process_step(lake: Path, start: Callable[..., subprocess.Popen[str]]) -> None:
    before = (lake / "lake" / "out.parquet").read_bytes()
    cli = start("-m", "glacier.cli", "run", "etl_pipes.py:in_thread")
    _step_in_flight(lake, cli)

    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=30)  # the step itself would hold on for 60 s

    assert cli.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert err.strip().startswith("interrupted: run ") and len(err.strip().splitlines()) == 1, err
    assert (lake / "lake" / "out.parquet").read_bytes() == before
    assert _record(lake)["state"] == "interrupted"


def test_ctrl_c_during_the_backoff_starts_no_further_attempt(lake: Path, start: Callable[..., subprocess.Popen[str]]) -> None:
    attempts = lake / "attempts"
    cli = start("-m", "glacier.cli", "run", "etl_pipes.py:retrying")
    _wait_for(lambda: attempts.exists() or cli.poll() is not None, 60, "the first attempt ran")
    seen = len(attempts.read_text().splitlines())  # 1, unless a backoff of up to 60 s was tiny

    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=30)

    assert cli.returncode == 130, out + err
    assert len(attempts.read_text().splitlines()) == seen
    (step,) = _record(lake)["steps"]  # type: ignore[misc]
    assert step["status"] == "interrupted" and step["attempts"] == seen


def test_ctrl_c_in_pipeline_run_raises_keyboard_interrupt_and_records_it(lake: Path, start: Callable[..., subprocess.Popen[str]]) -> None:
    before = (lake / "lake" / "out.parquet").read_bytes()
    script = start("api_run.py")
    worker = _step_in_flight(lake, script)

    script.send_signal(signal.SIGINT)
    out, err = script.communicate(timeout=30)

    assert script.returncode == 130, out + err
    assert "Traceback" not in err, err
    raised = json.loads(out.strip().splitlines()[-1])
    record = _record(lake)
    assert raised["type"] == "RunInterrupted"
    assert raised["message"].startswith(f"run {record['run_id']} of 'etl' was interrupted")
    assert record["state"] == "interrupted"
    assert not _alive(worker)
    assert (lake / "lake" / "out.parquet").read_bytes() == before


def test_a_worker_whose_parent_died_exits_before_it_commits(lake: Path) -> None:
    """The worker on its own: the process that started it (a shell here) dies while the step runs."""
    before = (lake / "lake" / "out.parquet").read_bytes()
    env = dict(os.environ, ROOT=str(lake), PYTHONPATH=os.pathsep.join([str(lake), *sys.path]))
    payload = subprocess.run(
        [sys.executable, "-c", "import json; from etl_pipes import in_worker; from glacier.plugins.payload import build_payload; "
         "print(json.dumps(build_payload(in_worker.build().topological_sort()[0], 'r1')))"],
        capture_output=True, text=True, env=env, cwd=lake, timeout=60, check=True,
    ).stdout
    (lake / "payload.json").write_text(payload)
    # sh starts the worker in the background, tells it that it is its parent, and exits.
    shell = subprocess.run(
        ["sh", "-c", f"GLACIER_WORKER_PARENT=$$ {sys.executable} -m glacier.run.worker < payload.json > /dev/null 2>&1 & echo $!"],
        capture_output=True, text=True, env=env, cwd=lake, timeout=30, start_new_session=True,
    )
    worker = int(shell.stdout.strip())
    try:
        _wait_for(lambda: not _alive(worker), 30, f"the orphaned worker {worker} exited")
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
    (lake / "release").write_text("")
    assert (lake / "lake" / "out.parquet").read_bytes() == before


def test_a_running_record_reads_as_interrupted_once_its_process_is_gone(tmp_path: Path) -> None:
    from glacier.run.history import RunStore, owner

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store = RunStore(tmp_path)
    base = {"pipeline": "etl", "state": "running", "started": 1.0, "steps": [], "note": None}
    store.write({**base, "run_id": "1-live", **owner()})
    store.write({**base, "run_id": "2-gone", **owner(), "pid": gone.pid})
    store.write({**base, "run_id": "3-elsewhere", **owner(), "pid": gone.pid, "host": "another-host"})

    states = {r["run_id"]: r["state"] for r in store.list()}
    assert states == {"1-live": "running", "2-gone": "interrupted", "3-elsewhere": "running"}
    assert store.load("2-gone")["note"] == f"the process that ran it (pid {gone.pid} on {owner()['host']}) is gone"
