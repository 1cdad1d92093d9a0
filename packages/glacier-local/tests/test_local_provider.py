"""glacier-local: LocalConfig buckets and the worker executor's JSON protocol."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from glacier import Pipeline, Provider
from glacier.config import LocalConfig, ProcessConfig
from glacier.errors import StepError, StepTimeoutError
from glacier.plugins.payload import PROTOCOL_VERSION


def double(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns(pl.col("x") * 2)


def sleepy(df: pl.LazyFrame) -> pl.LazyFrame:
    time.sleep(30)
    return df


def test_local_config_bucket_is_the_file_root_bucket_path(tmp_path: Path) -> None:
    provider = Provider(config=LocalConfig(root=str(tmp_path)))
    assert provider.bucket(bucket="lake", path="raw/a.parquet").uri == f"file://{tmp_path}/lake/raw/a.parquet"
    assert provider.name == "local"


def test_relative_roots_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert LocalConfig(root="data").root == str(tmp_path / "data")


def test_memory_root_gives_memory_buckets() -> None:
    provider = Provider(config=LocalConfig(root="memory://"))
    assert provider.bucket(bucket="b", path="/p.parquet").uri == "memory://b/p.parquet"


def test_serverless_without_config_is_the_worker_executor(tmp_path: Path) -> None:
    provider = Provider(config=LocalConfig(root=str(tmp_path)))
    assert provider.serverless().type == "process"
    assert provider.serverless(config=ProcessConfig(timeout=5)).config.timeout == 5


def payload(tmp_path: Path, func: str = "double") -> dict:
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pl.DataFrame({"x": [1, 2]}).write_parquet(src)
    return {
        "protocol": PROTOCOL_VERSION,
        "run_id": "r1",
        "step": func,
        "attempt": 1,
        "task": {"module": "not_importable_by_name", "qualname": func, "file": __file__},
        "sources": {"df": {"uri": f"file://{src}", "config": None}},
        "target": {"uri": f"file://{out}", "config": None},
    }


def test_worker_answers_a_payload_with_rows_bytes_and_seconds(tmp_path: Path) -> None:
    executor = Provider(config=LocalConfig(root=str(tmp_path))).serverless()
    result = executor.invoke(payload(tmp_path))
    assert result["ok"] is True
    assert result["rows"] == 2 and result["bytes"] == (tmp_path / "out.parquet").stat().st_size and result["seconds"] > 0
    assert pl.read_parquet(tmp_path / "out.parquet")["x"].to_list() == [2, 4]


def test_worker_reports_a_structured_error(tmp_path: Path) -> None:
    bad = payload(tmp_path)
    bad["sources"]["df"]["uri"] = f"file://{tmp_path}/missing.parquet"
    result = Provider(config=LocalConfig(root=str(tmp_path))).serverless().invoke(bad)
    assert result["ok"] is False
    assert result["error"]["type"] == "SourceNotFoundError"
    assert result["error"]["uri"] == f"file://{tmp_path}/missing.parquet"


def test_worker_past_its_timeout_is_killed(tmp_path: Path) -> None:
    executor = Provider(config=LocalConfig(root=str(tmp_path))).serverless(config=ProcessConfig(timeout=1))
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match="ran past its timeout of 1s"):
        executor.invoke(payload(tmp_path, "sleepy"))
    assert time.monotonic() - started < 30  # killed, not left to finish its 30 s sleep
    assert not (tmp_path / "out.parquet").exists()


def test_memory_buckets_are_refused_by_the_worker_executor_with_the_fix() -> None:
    provider = Provider(config=LocalConfig(root="memory://"))
    task = provider.serverless().task(double)
    result = Pipeline("m").source(provider.bucket(bucket="b", path="a.parquet")).transform(task).to(provider.bucket(bucket="b", path="o.parquet")).run()
    err = result["double"].error
    assert isinstance(err, StepError)
    assert "a worker process cannot reach them" in str(err) and "LocalConfig(root=DIR)" in str(err)
