"""Bad input gets an error naming the step, the URI and the fix, and loses nothing."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from local_buckets import path_of, read, write

from glacier import Pipeline, Provider, StepStatus
from glacier.errors import (
    SourceNotFoundError,
    SourceReadError,
    TargetWriteError,
    TaskFailedError,
    TaskOutputError,
    UnknownSchemeError,
)
from glacier.plugins.storage import TEMP_MARKER

OLD = pl.DataFrame({"old": ["untouched"]})


def fails_on_read(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.filter(pl.col("value") > 0)


def raises(df: pl.LazyFrame) -> pl.LazyFrame:
    raise RuntimeError("boom in user code")


def returns_a_list(df: pl.LazyFrame) -> list[int]:
    return [1, 2]


def fails_while_writing(df: pl.LazyFrame) -> pl.LazyFrame:
    # Planned fine, fails only when the data flows: the sink must not leave a partial target.
    return df.with_columns(pl.col("value").map_batches(lambda s: 1 / 0, return_dtype=pl.Float64))


def passes_through(df: pl.LazyFrame) -> pl.LazyFrame:
    return df


def collects(df: pl.LazyFrame) -> pl.DataFrame:
    return df.collect()


# pandas is not installed here: Glacier recognizes a pandas frame by its class's module
# and name alone, so a class that looks like pandas.DataFrame stands in for one.
FakePandasDataFrame = type("DataFrame", (), {"__module__": "pandas.core.frame"})


def returns_pandas(df: pl.LazyFrame) -> object:
    return FakePandasDataFrame()


def run_one(provider: Provider, func, source_path: str, executor: str = "local"):  # noqa: ANN001, ANN201
    ex = provider.local() if executor == "local" else provider.serverless()
    task = ex.task(name=func.__name__)(func)
    src = provider.bucket(bucket="lake", path=source_path)
    out = provider.bucket(bucket="lake", path="out/target.parquet")
    write(out, OLD)
    result = Pipeline("bad").source(src).transform(task).to(out).run()
    return result, src, out


def assert_target_untouched(out) -> None:  # noqa: ANN001
    assert read(out).equals(OLD)
    debris = [p for p in os.listdir(Path(path_of(out)).parent) if TEMP_MARKER in p]
    assert debris == []


@pytest.mark.parametrize("executor", ["local", "serverless"])
def test_missing_source_names_step_uri_and_fix(provider: Provider, executor: str) -> None:
    result, src, out = run_one(provider, fails_on_read, "raw/missing.parquet", executor)
    err = result["fails_on_read"].error
    assert isinstance(err, SourceNotFoundError)
    assert (err.step, err.uri) == ("fails_on_read", src.uri)
    assert "Step 'fails_on_read' failed on " + src.uri in str(err)
    assert "Hint: check the bucket and path" in str(err)
    assert_target_untouched(out)


@pytest.mark.parametrize("executor", ["local", "serverless"])
def test_a_file_that_is_not_parquet_is_a_read_error_on_that_uri(provider: Provider, executor: str) -> None:
    src = provider.bucket(bucket="lake", path="raw/notes.parquet")
    Path(path_of(src)).parent.mkdir(parents=True)
    Path(path_of(src)).write_text("this is not parquet")
    result, _, out = run_one(provider, fails_on_read, "raw/notes.parquet", executor)
    err = result["fails_on_read"].error
    assert isinstance(err, SourceReadError)
    assert err.uri == src.uri
    assert "cannot be read as parquet" in str(err)
    assert_target_untouched(out)


def test_a_truncated_parquet_source_fails_on_that_uri(provider: Provider) -> None:
    src = provider.bucket(bucket="lake", path="raw/cut.parquet")
    write(src, pl.DataFrame({"value": list(range(10_000))}))
    data = Path(path_of(src)).read_bytes()
    Path(path_of(src)).write_bytes(data[: len(data) // 2])
    result, _, out = run_one(provider, fails_on_read, "raw/cut.parquet")
    err = result["fails_on_read"].error
    assert isinstance(err, SourceReadError) and err.uri == src.uri
    assert_target_untouched(out)


def test_a_source_with_the_wrong_schema_fails_naming_the_source(provider: Provider) -> None:
    src = provider.bucket(bucket="lake", path="raw/other.parquet")
    write(src, pl.DataFrame({"amount": [1.0]}))
    result, _, out = run_one(provider, fails_on_read, "raw/other.parquet")
    err = result["fails_on_read"].error
    assert isinstance(err, SourceReadError)
    assert src.uri in str(err) and "value" in str(err)
    assert_target_untouched(out)


@pytest.mark.parametrize(
    ("second", "column", "expected"),
    [
        (pl.DataFrame({"id": [2], "value": ["x"]}), "value", "Float64 in a.parquet, String in b.parquet"),
        (pl.DataFrame({"id": [2], "amount": [2.0]}), "amount", "missing from a.parquet, Float64 in b.parquet"),
        (pl.DataFrame({"id": [2]}), "value", "Float64 in a.parquet, missing from b.parquet"),
    ],
    ids=["type", "extra-column", "missing-column"],
)
@pytest.mark.parametrize(("func", "executor"), [(passes_through, "local"), (collects, "local"), (passes_through, "serverless")], ids=["lazy", "collected", "worker"])
def test_glob_files_with_different_schemas_are_named_with_their_mismatching_columns(
    provider: Provider, second: pl.DataFrame, column: str, expected: str, func, executor: str  # noqa: ANN001
) -> None:
    write(provider.bucket(bucket="lake", path="parts/a.parquet"), pl.DataFrame({"id": [1], "value": [1.0]}))
    write(provider.bucket(bucket="lake", path="parts/b.parquet"), second)
    result, src, out = run_one(provider, func, "parts/*.parquet", executor)
    err = result[func.__name__].error
    assert isinstance(err, SourceReadError)
    assert err.uri == src.uri
    assert f"column {column!r}: {expected}" in str(err)
    assert "do not share one schema" in str(err)
    assert "writable" not in str(err)
    assert_target_untouched(out)


@pytest.mark.parametrize("executor", ["local", "serverless"])
def test_a_task_returning_a_pandas_frame_is_told_how_to_convert_it(provider: Provider, executor: str) -> None:
    write(provider.bucket(bucket="lake", path="raw/ok.parquet"), pl.DataFrame({"value": [1.0]}))
    result, _, out = run_one(provider, returns_pandas, "raw/ok.parquet", executor)
    err = result["returns_pandas"].error
    assert isinstance(err, TaskOutputError)
    assert "the task returned a pandas DataFrame, not a polars LazyFrame or DataFrame" in str(err)
    assert "pl.from_pandas(" in str(err)
    assert_target_untouched(out)


@pytest.mark.parametrize("executor", ["local", "serverless"])
def test_a_task_that_raises_keeps_its_traceback_and_the_target(provider: Provider, executor: str) -> None:
    write(provider.bucket(bucket="lake", path="raw/ok.parquet"), pl.DataFrame({"value": [1.0]}))
    result, _, out = run_one(provider, raises, "raw/ok.parquet", executor)
    step = result["raises"]
    assert step.status is StepStatus.FAILED
    assert isinstance(step.error, TaskFailedError)
    assert "RuntimeError: boom in user code" in str(step.error)
    assert "boom in user code" in (step.error.traceback or "")
    assert_target_untouched(out)


@pytest.mark.parametrize("executor", ["local", "serverless"])
def test_a_task_returning_something_else_is_told_what_to_return(provider: Provider, executor: str) -> None:
    write(provider.bucket(bucket="lake", path="raw/ok.parquet"), pl.DataFrame({"value": [1.0]}))
    result, _, out = run_one(provider, returns_a_list, "raw/ok.parquet", executor)
    err = result["returns_a_list"].error
    assert isinstance(err, TaskOutputError)
    assert "returned list, not a polars LazyFrame or DataFrame" in str(err)
    assert "Hint: return a pl.LazyFrame" in str(err)
    assert_target_untouched(out)


def test_a_query_failing_mid_write_leaves_the_old_target_and_no_debris(provider: Provider) -> None:
    write(provider.bucket(bucket="lake", path="raw/ok.parquet"), pl.DataFrame({"value": [1.0, 2.0]}))
    result, _, out = run_one(provider, fails_while_writing, "raw/ok.parquet")
    err = result["fails_while_writing"].error
    assert isinstance(err, TargetWriteError)
    assert err.uri == out.uri
    assert_target_untouched(out)


def test_raise_on_failure_raises_the_steps_error(provider: Provider) -> None:
    task = provider.local().task(fails_on_read)
    p = Pipeline("p").source(provider.bucket(bucket="l", path="nope.parquet")).transform(task).to(provider.bucket(bucket="l", path="o.parquet"))
    with pytest.raises(SourceNotFoundError):
        p.run(raise_on_failure=True)


def test_a_failed_step_skips_its_downstream_and_lets_independent_branches_finish(provider: Provider) -> None:
    local = provider.local()
    good_src = provider.bucket(bucket="l", path="good.parquet")
    write(good_src, pl.DataFrame({"value": [1.0]}))
    bad = Pipeline("bad").source(provider.bucket(bucket="l", path="missing.parquet")).transform(local.task(name="first")(fails_on_read)).to(provider.bucket(bucket="l", path="m.parquet"))
    bad.transform(local.task(name="after")(fails_on_read)).to(provider.bucket(bucket="l", path="n.parquet"))
    good = Pipeline("good").source(good_src).transform(local.task(name="other")(fails_on_read)).to(provider.bucket(bucket="l", path="g.parquet"))
    result = Pipeline.compose(bad, good, name="both").run()
    assert result["first"].status is StepStatus.FAILED
    assert result["after"].status is StepStatus.SKIPPED and "upstream step 'first' failed" in (result["after"].note or "")
    assert result["other"].status is StepStatus.SUCCEEDED


def test_an_unknown_scheme_fails_when_the_bucket_is_used_naming_the_uri(provider: Provider) -> None:
    from glacier import Bucket

    odd = Bucket.from_uri("nosuch://lake/raw.parquet")
    with pytest.raises(UnknownSchemeError, match="'nosuch'.*nosuch://lake/raw.parquet"):
        odd.exists()
