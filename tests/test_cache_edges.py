"""Where a ``cache=True`` step could wrongly be skipped: sources rewritten behind its back,
options changed, its target removed, a glob gaining a file.

Each run says what the step did (``succeeded``: it ran; ``cached``: it was skipped), and
the target's content shows which data it was computed from.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import polars as pl
import pytest
from local_buckets import path_of, read, write

from glacier import Bucket, Pipeline, Provider, StepStatus


def add_one(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns(pl.col("v") + 1)


def total(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.select(pl.col("v").sum())


def parquet_bytes(values: list[int]) -> bytes:
    """Parquet of ``v = values`` whose size depends only on how many values there are."""
    buffer = io.BytesIO()
    pl.DataFrame({"v": values}, schema={"v": pl.Int64}).write_parquet(buffer, compression="uncompressed", statistics=False)
    return buffer.getvalue()


def cached_step(provider: Provider, src: Bucket, **options: object) -> tuple[Pipeline, Bucket]:
    task = provider.local().task(name="add_one", cache=True, **options)(add_one)
    out = provider.bucket(bucket="lake", path="out.parquet")
    return Pipeline("edges").source(src).transform(task).to(out), out


def status(pipeline: Pipeline, step: str = "add_one") -> StepStatus:
    result = pipeline.run()
    assert result.ok, result.summary()
    return result[step].status


# -- a source rewritten -----------------------------------------------------------------


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Overwrite the file's bytes through the same inode (what an editor or `dd` may do)."""
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()


def rewrite_by_rename(path: Path, data: bytes) -> None:
    """Write a new file and rename it over the old one (what most tools do)."""
    temp = path.with_name(path.name + ".new")
    temp.write_bytes(data)
    os.replace(temp, path)


@pytest.mark.parametrize("rewrite", [rewrite_in_place, rewrite_by_rename], ids=["in-place", "renamed-over"])
def test_a_source_rewritten_with_the_same_size_and_mtime_makes_the_step_run_again(provider: Provider, rewrite) -> None:  # noqa: ANN001
    src = provider.bucket(bucket="lake", path="in.parquet")
    path = Path(path_of(src))
    path.parent.mkdir(parents=True)
    before, after = parquet_bytes([1, 2, 3]), parquet_bytes([10, 20, 30])
    assert len(before) == len(after) and before != after  # the same size, other content
    path.write_bytes(before)
    pipeline, out = cached_step(provider, src)
    assert status(pipeline) is StepStatus.SUCCEEDED
    assert status(pipeline) is StepStatus.CACHED  # unchanged: skipped

    stat = path.stat()
    rewrite(path, after)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the old modification time back
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)

    assert status(pipeline) is StepStatus.SUCCEEDED
    assert read(out)["v"].to_list() == [11, 21, 31]


# -- the task's options -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "then"),
    [({"retries": 0}, {"retries": 3}), ({}, {"timeout": 30}), ({"timeout": 30}, {"timeout": 60})],
    ids=["retries", "timeout-added", "timeout-changed"],
)
def test_changing_how_a_step_is_attempted_keeps_its_cached_result(provider: Provider, first: dict, then: dict) -> None:
    # Retries and timeout decide how often and how long the step is tried, not what it
    # writes: a result computed under the old settings is still the right one.
    src = provider.bucket(bucket="lake", path="in.parquet")
    write(src, pl.DataFrame({"v": [1, 2, 3]}))
    pipeline, _ = cached_step(provider, src, **first)
    assert status(pipeline) is StepStatus.SUCCEEDED
    again, out = cached_step(provider, src, **then)
    assert status(again) is StepStatus.CACHED
    assert read(out)["v"].to_list() == [2, 3, 4]


def test_changing_a_setting_kept_with_the_task_makes_the_step_run_again(provider: Provider) -> None:
    # Extra settings (``**config``) may change what the step computes, so they are in the key.
    src = provider.bucket(bucket="lake", path="in.parquet")
    write(src, pl.DataFrame({"v": [1, 2, 3]}))
    pipeline, _ = cached_step(provider, src, region_hint="eu")
    assert status(pipeline) is StepStatus.SUCCEEDED
    assert status(cached_step(provider, src, region_hint="eu")[0]) is StepStatus.CACHED
    assert status(cached_step(provider, src, region_hint="us")[0]) is StepStatus.SUCCEEDED


def test_writing_the_step_to_another_target_makes_it_run_there(provider: Provider) -> None:
    src = provider.bucket(bucket="lake", path="in.parquet")
    write(src, pl.DataFrame({"v": [1, 2, 3]}))
    task = provider.local().task(name="add_one", cache=True)(add_one)
    first = provider.bucket(bucket="lake", path="out.parquet")
    assert status(Pipeline("edges").source(src).transform(task).to(first)) is StepStatus.SUCCEEDED
    other = provider.bucket(bucket="lake", path="elsewhere/out.parquet")
    assert status(Pipeline("edges").source(src).transform(task).to(other)) is StepStatus.SUCCEEDED
    assert read(other)["v"].to_list() == [2, 3, 4]


# -- the target ---------------------------------------------------------------------------


def test_a_target_deleted_by_hand_makes_the_step_run_again(provider: Provider) -> None:
    src = provider.bucket(bucket="lake", path="in.parquet")
    write(src, pl.DataFrame({"v": [1, 2, 3]}))
    pipeline, out = cached_step(provider, src)
    assert status(pipeline) is StepStatus.SUCCEEDED
    os.remove(path_of(out))  # the cache record beside it stays
    assert status(pipeline) is StepStatus.SUCCEEDED
    assert read(out)["v"].to_list() == [2, 3, 4]
    assert status(pipeline) is StepStatus.CACHED


# -- a glob source ------------------------------------------------------------------------


def glob_step(provider: Provider) -> tuple[Pipeline, Bucket]:
    task = provider.local().task(name="total", cache=True)(total)
    out = provider.bucket(bucket="lake", path="total.parquet")
    return Pipeline("glob").source(provider.bucket(bucket="lake", path="parts/*.parquet")).transform(task).to(out), out


def test_a_new_file_matching_a_glob_source_makes_the_step_run_again(provider: Provider) -> None:
    for i in (1, 2):
        write(provider.bucket(bucket="lake", path=f"parts/p{i}.parquet"), pl.DataFrame({"v": [i]}))
    pipeline, out = glob_step(provider)
    assert status(pipeline, "total") is StepStatus.SUCCEEDED
    assert status(pipeline, "total") is StepStatus.CACHED
    write(provider.bucket(bucket="lake", path="parts/p3.parquet"), pl.DataFrame({"v": [3]}))
    assert status(pipeline, "total") is StepStatus.SUCCEEDED
    assert read(out)["v"].to_list() == [6]


def test_a_file_removed_from_a_glob_source_makes_the_step_run_again(provider: Provider) -> None:
    for i in (1, 2, 3):
        write(provider.bucket(bucket="lake", path=f"parts/p{i}.parquet"), pl.DataFrame({"v": [i]}))
    pipeline, out = glob_step(provider)
    assert status(pipeline, "total") is StepStatus.SUCCEEDED
    os.remove(path_of(provider.bucket(bucket="lake", path="parts/p3.parquet")))
    assert status(pipeline, "total") is StepStatus.SUCCEEDED
    assert read(out)["v"].to_list() == [3]


def test_a_glob_match_rewritten_with_the_same_size_and_mtime_makes_the_step_run_again(provider: Provider) -> None:
    parts = Path(path_of(provider.bucket(bucket="lake", path="parts/p1.parquet"))).parent
    parts.mkdir(parents=True)
    (parts / "p1.parquet").write_bytes(parquet_bytes([1]))
    (parts / "p2.parquet").write_bytes(parquet_bytes([2]))
    pipeline, out = glob_step(provider)
    assert status(pipeline, "total") is StepStatus.SUCCEEDED
    stat = (parts / "p2.parquet").stat()
    rewrite_in_place(parts / "p2.parquet", parquet_bytes([9]))
    os.utime(parts / "p2.parquet", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert status(pipeline, "total") is StepStatus.SUCCEEDED
    assert read(out)["v"].to_list() == [10]
