"""s3:// buckets against moto's server: polars options, endpoints, analyze, errors (the contract suites, the seed ETL, cache and resume among them, are in test_contracts.py)."""

from __future__ import annotations


import polars as pl
from polars.testing import assert_frame_equal

from glacier import Pipeline, Provider
from glacier.config import AwsConfig
from glacier.errors import SourceReadError
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
