"""Reusable contract suites: a provider proves it works by subclassing them.

As fsspec's backends do with ``fsspec.tests.abstract``, a provider package (Glacier's
own or a third party's) subclasses these classes in its test suite and supplies the
fixtures they ask for; every test then runs against its storage and executors::

    # tests/test_contracts.py of a provider package
    import pytest
    from glacier.testing import AtomicCommitContract, BucketContract

    class TestS3Buckets(BucketContract, AtomicCommitContract):
        @pytest.fixture
        def make_bucket(self, s3_bucket_name):
            return lambda path: Bucket.from_uri(f"s3://{s3_bucket_name}/{path}", config=...)

Suites and the fixtures they need:

- :class:`BucketContract`: ``make_bucket(path) -> Bucket``, each call a place in a
  fresh, empty location.
- :class:`AtomicCommitContract`: ``make_bucket``.
- :class:`ExecutorContract`: ``make_bucket``, ``executor`` (made with the provider's
  ``serverless()`` or ``local()``), and ``deployment`` (the manifest for cloud
  executors: which function runs each task of :mod:`glacier.testing.tasks`; ``None``
  for executors that run here).
- :class:`InfrastructureContract`: ``generated_dir``, a directory that
  ``mode="generate"`` wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier.bucket import Bucket
from glacier.dag import TaskInstance
from glacier.errors import SourceNotFoundError, StepError, TaskFailedError, TaskOutputError
from glacier.plugins.storage import TEMP_MARKER
from glacier.testing import tasks

if TYPE_CHECKING:
    from pathlib import Path

    from glacier.plugins.deployment import Deployment
    from glacier.plugins.executor import Executor

__all__ = ["BucketContract", "AtomicCommitContract", "ExecutorContract", "InfrastructureContract", "sample_frame"]

MakeBucket = Callable[[str], Bucket]


def sample_frame(rows: int = 1000, offset: int = 0) -> pl.DataFrame:
    """A small frame with the benchmark's columns: id, category, value (some null), ts."""
    return pl.select(id=pl.int_range(offset, offset + rows, dtype=pl.Int64)).with_columns(
        category=pl.format("c{}", pl.col("id") % 5),
        value=pl.when(pl.col("id") % 17 == 0).then(None).otherwise(pl.col("id").cast(pl.Float64)),
        ts=pl.datetime(2026, 1, 1) + pl.duration(minutes=pl.col("id")),
    )


def _visible(bucket: Bucket) -> list[str]:
    storage = bucket.storage
    parent = storage.path(bucket.uri).rpartition("/")[0]
    storage.fs.invalidate_cache(parent)
    try:
        return sorted(str(p).rpartition("/")[2] for p in storage.fs.ls(parent, detail=False))
    except FileNotFoundError:
        return []


class BucketContract:
    """Reading, writing and inspecting buckets of one scheme."""

    @pytest.fixture
    def make_bucket(self) -> MakeBucket:
        """Override: ``path -> Bucket`` in a fresh, empty location."""
        raise NotImplementedError

    def test_a_written_frame_reads_back_equal(self, make_bucket: MakeBucket) -> None:
        """Write with the storage, scan with polars: same data."""
        bucket, frame = make_bucket("round/trip.parquet"), sample_frame()
        bucket.storage.write(frame.lazy(), bucket.uri)
        assert bucket.exists()
        assert_frame_equal(bucket.scan().collect(), frame)

    def test_size_and_rows_come_from_metadata(self, make_bucket: MakeBucket) -> None:
        """``size`` is the object's size; ``count_rows`` reads the footer."""
        bucket = make_bucket("meta/one.parquet")
        bucket.storage.write(sample_frame(321), bucket.uri)
        assert bucket.storage.size(bucket.uri) > 0
        assert bucket.storage.count_rows(bucket.uri) == 321

    def test_a_missing_object_does_not_exist(self, make_bucket: MakeBucket) -> None:
        """``exists`` is false and ``fingerprint`` raises for nothing."""
        bucket = make_bucket("missing/none.parquet")
        assert not bucket.exists()
        with pytest.raises((FileNotFoundError, OSError)):
            bucket.storage.fingerprint(bucket.uri)

    def test_fingerprint_changes_with_content_and_not_by_itself(self, make_bucket: MakeBucket) -> None:
        """The identity used by ``cache=True`` is stable, and changes on rewrite."""
        bucket = make_bucket("fp/data.parquet")
        bucket.storage.write(sample_frame(10), bucket.uri)
        first = bucket.storage.fingerprint(bucket.uri)
        assert bucket.storage.fingerprint(bucket.uri) == first
        bucket.storage.write(sample_frame(11), bucket.uri)
        assert bucket.storage.fingerprint(bucket.uri) != first

    def test_a_glob_reads_every_part(self, make_bucket: MakeBucket) -> None:
        """``dir/*.parquet`` scans every matching object."""
        for i in range(3):
            part = make_bucket(f"parts/p{i}.parquet")
            part.storage.write(sample_frame(5, offset=5 * i), part.uri)
        glob = make_bucket("parts/*.parquet")
        assert glob.exists()
        assert glob.scan().collect().sort("id")["id"].to_list() == list(range(15))

    def test_remove_deletes_the_object(self, make_bucket: MakeBucket) -> None:
        """``remove`` deletes, and is quiet for a missing object."""
        bucket = make_bucket("rm/x.parquet")
        bucket.storage.write(sample_frame(3), bucket.uri)
        bucket.storage.remove(bucket.uri)
        bucket.storage.fs.invalidate_cache()
        assert not bucket.exists()
        bucket.storage.remove(bucket.uri)


class AtomicCommitContract:
    """A target is never seen half written, and a failed write changes nothing."""

    @pytest.fixture
    def make_bucket(self) -> MakeBucket:
        """Override: ``path -> Bucket`` in a fresh, empty location."""
        raise NotImplementedError

    def test_a_write_failing_midway_leaves_the_previous_content(self, make_bucket: MakeBucket) -> None:
        """A query that fails while streaming leaves the old object and no debris."""
        bucket = make_bucket("atomic/target.parquet")
        old = sample_frame(7)
        bucket.storage.write(old, bucket.uri)
        before = _visible(bucket)
        failing = sample_frame(50_000).lazy().with_columns(pl.col("value").map_batches(_explode, return_dtype=pl.Float64))
        with pytest.raises(Exception, match="contract write failure"):
            bucket.storage.write(failing, bucket.uri)
        assert_frame_equal(bucket.scan().collect(), old)
        assert _visible(bucket) == before
        assert not [name for name in before if TEMP_MARKER in name]

    def test_an_overwrite_replaces_the_whole_object(self, make_bucket: MakeBucket) -> None:
        """After a successful write, the target is exactly the new data."""
        bucket = make_bucket("atomic/replace.parquet")
        bucket.storage.write(sample_frame(100), bucket.uri)
        new = sample_frame(3, offset=1000)
        bucket.storage.write(new, bucket.uri)
        assert_frame_equal(bucket.scan().collect(), new)


def _explode(series: pl.Series) -> pl.Series:
    raise RuntimeError("contract write failure")


class ExecutorContract:
    """An executor runs a step through the protocol and reports success and errors alike."""

    @pytest.fixture
    def make_bucket(self) -> MakeBucket:
        """Override: ``path -> Bucket`` in a fresh, empty location."""
        raise NotImplementedError

    @pytest.fixture
    def executor(self) -> Executor:
        """Override: the executor under test."""
        raise NotImplementedError

    @pytest.fixture
    def deployment(self) -> Deployment | None:
        """Override for cloud executors: the manifest mapping the contract's tasks to functions."""
        return None

    def _step(self, executor: Executor, func: Callable[..., Any], make_bucket: MakeBucket, *, source: Bucket | None = None) -> TaskInstance:
        task = executor.task(name=func.__name__)(func)
        if source is None:
            source = make_bucket("exec/in.parquet")
            source.storage.write(sample_frame(200), source.uri)
        return TaskInstance(task=task, source=source, target=make_bucket(f"exec/{func.__name__}.parquet"), name=func.__name__)

    def test_a_step_runs_and_reports_rows_bytes_and_seconds(self, executor: Executor, make_bucket: MakeBucket, deployment: dict[str, Any] | None) -> None:
        """Rows, bytes and seconds come back; the target holds the task's result."""
        step = self._step(executor, tasks.double_value, make_bucket)
        outcome = executor.run(step, "contract-run", 1, deployment=deployment)
        assert outcome.rows == 200
        assert outcome.bytes == step.target.storage.size(step.target.uri)
        assert outcome.seconds > 0
        written = step.target.scan().collect()
        assert written["doubled"].to_list() == (sample_frame(200)["value"] * 2).to_list()

    def test_a_task_error_comes_back_naming_the_step(self, executor: Executor, make_bucket: MakeBucket, deployment: dict[str, Any] | None) -> None:
        """The task's exception travels back as a TaskFailedError."""
        step = self._step(executor, tasks.fail_loudly, make_bucket)
        with pytest.raises(TaskFailedError, match="contract failure") as info:
            executor.run(step, "contract-run", 1, deployment=deployment)
        assert info.value.step == "fail_loudly"
        assert not step.target.exists()

    def test_a_wrong_return_type_is_reported(self, executor: Executor, make_bucket: MakeBucket, deployment: dict[str, Any] | None) -> None:
        """Returning something other than a frame is a TaskOutputError."""
        step = self._step(executor, tasks.return_wrong_type, make_bucket)
        with pytest.raises(TaskOutputError):
            executor.run(step, "contract-run", 1, deployment=deployment)

    def test_a_missing_source_names_its_uri(self, executor: Executor, make_bucket: MakeBucket, deployment: dict[str, Any] | None) -> None:
        """A source that does not exist fails with its URI."""
        missing = make_bucket("exec/absent.parquet")
        step = self._step(executor, tasks.double_value, make_bucket, source=missing)
        with pytest.raises(SourceNotFoundError) as info:
            executor.run(step, "contract-run", 1, deployment=deployment)
        assert info.value.uri == missing.uri
        assert isinstance(info.value, StepError)


class InfrastructureContract:
    """Generated infrastructure loads in Terraform's own loader and passes checkov."""

    @pytest.fixture
    def generated_dir(self) -> Path:
        """Override: a directory written by ``pipeline.run(mode="generate", out=...)``."""
        raise NotImplementedError

    def test_generated_terraform_loads(self, generated_dir: Path) -> None:
        """Terraform's configuration loader reports no error."""
        from glacier.testing.terraform import assert_terraform_loads

        assert_terraform_loads(generated_dir)

    def test_generated_terraform_passes_checkov(self, generated_dir: Path) -> None:
        """checkov finds no failed check; every skip carries its reason."""
        from glacier.testing.terraform import assert_checkov_passes

        assert_checkov_passes(generated_dir)
