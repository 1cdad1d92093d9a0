"""s3:// buckets against moto's server (the contract suites are in test_contracts.py): the seed's ETL, cache and resume."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import Pipeline, Provider, StepStatus, hookimpl
from glacier.config import AwsConfig
from glacier.errors import SourceReadError
from glacier.plugins.registry import get_plugin_manager
from glacier.testing import sample_frame
from glacier_aws.storage import S3Storage, polars_storage_options


def test_polars_options_use_object_store_keys_that_reach_the_endpoint(aws_config: AwsConfig, s3_bucket: str) -> None:
    options = polars_storage_options(aws_config)
    assert options == {
        "aws_region": "us-east-1", "aws_endpoint_url": aws_config.endpoint_url, "aws_allow_http": "true", "connect_timeout": "5s", "max_retries": 1,
    }
    uri = f"s3://{s3_bucket}/direct.parquet"
    pl.DataFrame({"x": [1]}).lazy().sink_parquet(uri, storage_options=options)
    assert pl.scan_parquet(uri, storage_options=options).collect()["x"].to_list() == [1]


def test_service_endpoints_override_the_shared_endpoint(aws_config: AwsConfig, s3_bucket: str) -> None:
    """The shared endpoint is a closed port, the s3 one is moto: every S3 path must reach moto."""
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    moto = aws_config.endpoint_url
    assert moto is not None
    config = AwsConfig(region="us-east-1", endpoint_url=closed, service_endpoints={"s3": moto})
    assert polars_storage_options(config)["aws_endpoint_url"] == moto
    assert config.endpoint_for("lambda") == closed  # the other services keep the shared one

    storage, uri = S3Storage(config), f"s3://{s3_bucket}/override/data.parquet"
    frame = sample_frame(7)
    storage.write(frame.lazy(), uri)  # through polars' object_store
    assert storage.exists(uri) and storage.fingerprint(uri)  # through s3fs
    assert_frame_equal(storage.scan(uri).collect(), frame)
    assert storage.fs.ls(f"{s3_bucket}/override") == [f"{s3_bucket}/override/data.parquet"]


def _extract(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.filter(pl.col("value").is_not_null())


def _transform(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


def _aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


@pytest.fixture
def calls() -> Iterator[list[str]]:
    """The steps that ran to success, in order, as the lifecycle hooks report them.

    Counted by a plugin, not inside the tasks: a list the tasks appended to would be
    part of their cache keys (a cache key covers the values a task refers to).
    """
    ran: list[str] = []

    class Recorder:
        @hookimpl
        def glacier_step_finished(self, run: Any, step: Any, result: Any) -> None:
            if result.status is StepStatus.SUCCEEDED:
                ran.append(step.name)

    get_plugin_manager().register(Recorder(), name="test-s3-calls")
    yield ran
    get_plugin_manager().unregister(name="test-s3-calls")


def seed_pipeline(aws: Provider, bucket: str, *, cache: bool = False) -> Pipeline:
    local = aws.local()

    def counted(func):  # noqa: ANN001, ANN202
        return local.task(name=func.__name__.strip("_"), cache=cache)(func)

    b = {n: aws.bucket(bucket=bucket, path=f"{n}.parquet") for n in ("raw", "intermediate/step1", "intermediate/step2", "output/result")}
    return (
        Pipeline(name="etl")
        .source(b["raw"]).transform(counted(_extract)).to(b["intermediate/step1"])
        .transform(counted(_transform)).to(b["intermediate/step2"])
        .transform(counted(_aggregate)).to(b["output/result"])
    )


def test_seed_etl_on_s3_matches_polars(aws: Provider, aws_config: AwsConfig, s3_bucket: str) -> None:
    raw = sample_frame(5000)
    raw.write_parquet(f"s3://{s3_bucket}/raw.parquet", storage_options=polars_storage_options(aws_config))
    result = seed_pipeline(aws, s3_bucket).run(mode="local")
    assert result.ok, result.summary()
    got = pl.read_parquet(f"s3://{s3_bucket}/output/result.parquet", storage_options=polars_storage_options(aws_config))
    assert_frame_equal(got, _aggregate(_transform(_extract(raw.lazy()))).collect())
    assert result["extract"].rows == raw["value"].is_not_null().sum()


def test_cache_on_s3_uses_etags_and_reruns_only_what_changed(aws: Provider, aws_config: AwsConfig, s3_bucket: str, calls: list[str]) -> None:
    options = polars_storage_options(aws_config)
    sample_frame(100).write_parquet(f"s3://{s3_bucket}/raw.parquet", storage_options=options)
    first = seed_pipeline(aws, s3_bucket, cache=True).run()
    assert first.ok and calls == ["extract", "transform", "aggregate"]
    assert all("ETag=" in fp for fp in first["extract"].input_fingerprints.values())

    calls.clear()
    second = seed_pipeline(aws, s3_bucket, cache=True).run()
    assert calls == [] and {s.status for s in second.steps.values()} == {StepStatus.CACHED}

    sample_frame(120).write_parquet(f"s3://{s3_bucket}/raw.parquet", storage_options=options)
    S3Storage(aws_config).fs.invalidate_cache()
    third = seed_pipeline(aws, s3_bucket, cache=True).run()
    assert third.ok and calls == ["extract", "transform", "aggregate"]


def test_resume_on_s3_runs_the_failed_step_and_what_follows(aws: Provider, aws_config: AwsConfig, s3_bucket: str, calls: list[str]) -> None:
    sample_frame(100).write_parquet(f"s3://{s3_bucket}/raw.parquet", storage_options=polars_storage_options(aws_config))
    pipeline = seed_pipeline(aws, s3_bucket)
    pipeline.steps[1].task.func = lambda df: 1 / 0  # the fault
    failed = pipeline.run()
    assert failed["transform"].status is StepStatus.FAILED and calls == ["extract"]

    calls.clear()
    fixed = seed_pipeline(aws, s3_bucket)
    resumed = fixed.run(resume=True)
    assert resumed.ok, resumed.summary()
    assert calls == ["transform", "aggregate"]
    assert resumed["extract"].status is StepStatus.REUSED


def test_analyze_lists_lambda_limits_and_cross_provider_transfers(aws: Provider, aws_config: AwsConfig, s3_bucket: str, tmp_path) -> None:  # noqa: ANN001
    from glacier.config import LambdaConfig, LocalConfig

    sample_frame(10).write_parquet(f"s3://{s3_bucket}/raw.parquet", storage_options=polars_storage_options(aws_config))
    lam = aws.serverless(config=LambdaConfig(timeout=60))
    local_out = Provider(config=LocalConfig(root=str(tmp_path))).bucket(bucket="l", path="out.parquet")
    p = Pipeline("x").source(aws.bucket(bucket=s3_bucket, path="raw.parquet")).transform(lam.task(name="transform", timeout=120)(_transform)).to(local_out)
    analysis = p.run(mode="analyze")
    assert analysis.steps["transform"].output_schema["doubled"] == "Float64"
    assert any("over the function's LambdaConfig(timeout=60)" in problem for problem in analysis.problems)
    assert analysis.transfers == [f"transform (aws lambda) writes {local_out.uri} (local)"]


def test_glob_files_with_different_schemas_on_s3_are_named_with_the_mismatching_column(aws: Provider, aws_config: AwsConfig, s3_bucket: str) -> None:
    options = polars_storage_options(aws_config)
    pl.DataFrame({"value": [1.0]}).write_parquet(f"s3://{s3_bucket}/parts/a.parquet", storage_options=options)
    pl.DataFrame({"value": ["x"]}).write_parquet(f"s3://{s3_bucket}/parts/b.parquet", storage_options=options)
    source = aws.bucket(bucket=s3_bucket, path="parts/*.parquet")
    task = aws.local().task(name="copy")(_extract)
    result = Pipeline(name="parts").source(source).transform(task).to(aws.bucket(bucket=s3_bucket, path="out.parquet")).run()
    err = result["copy"].error
    assert isinstance(err, SourceReadError) and err.uri == source.uri
    assert "column 'value': Float64 in a.parquet, String in b.parquet" in str(err)


def _keep(df: pl.LazyFrame) -> pl.LazyFrame:
    return df


def test_an_unreachable_endpoint_fails_fast_and_names_it(tmp_path) -> None:  # noqa: ANN001
    import socket
    import time

    from glacier.errors import StorageUnreachableError

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    aws = Provider(config=AwsConfig(region="us-east-1", endpoint_url=endpoint))
    raw, out = aws.bucket(bucket="lake", path="raw.parquet"), aws.bucket(bucket="lake", path="out.parquet")
    pipeline = Pipeline("unreachable", state_dir=str(tmp_path)).source(raw).transform(aws.local().task(_keep)).to(out)

    started = time.monotonic()
    result = pipeline.run()
    took = time.monotonic() - started

    error = result["_keep"].error
    assert isinstance(error, StorageUnreachableError), repr(error)
    assert error.step == "_keep" and error.uri == "s3://lake/raw.parquet"
    assert f"cannot reach S3 at {endpoint}" in str(error)
    assert "AwsConfig(endpoint_url=" in (error.hint or "")
    # No event marks a refused connection, so this bound is on time, but set between the two
    # behaviours with room on both sides: about 4 s here with Glacier's settings, 34 s with the
    # clients' default retries and timeouts.
    assert took < 25, f"took {took:.1f}s"
