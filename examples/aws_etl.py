"""The seed's AWS pipeline: S3 buckets, one local step and two Lambda steps.

    raw (S3) → extract (local) → step1 (S3) → transform (Lambda) → step2 (S3)
             → aggregate (Lambda) → result (S3)

Try it without an AWS account, on moto's S3 on this machine (every step runs here).
moto comes with glacier-aws's ``testing`` extra; from the repository's root:

    pip install -e packages/glacier-core -e packages/glacier-local -e "packages/glacier-aws[testing]"
    python examples/aws_etl.py --moto

With AWS credentials:

    glacier generate examples/aws_etl.py --out infra      # Terraform + the Lambda artifact
    terraform -chdir=infra init && terraform -chdir=infra apply
    glacier run examples/aws_etl.py --mode cloud          # local step here, Lambda steps on AWS

Settings come from the environment: GLACIER_AWS_REGION (default us-east-1),
GLACIER_DATA_BUCKET (default glacier-demo-data-lake) and AWS_ENDPOINT_URL (an S3-
compatible endpoint, optional).
"""

from __future__ import annotations

import os
import sys

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import AwsConfig, LambdaConfig

BUCKET = os.environ.get("GLACIER_DATA_BUCKET", "glacier-demo-data-lake")

provider = Provider(config=AwsConfig(region=os.environ.get("GLACIER_AWS_REGION", "us-east-1"), endpoint_url=os.environ.get("AWS_ENDPOINT_URL")))
local_exec = provider.local()
lambda_exec = provider.serverless(config=LambdaConfig(memory=1024, timeout=300))

raw_data = provider.bucket(bucket=BUCKET, path="raw/data.parquet")
intermediate1 = provider.bucket(bucket=BUCKET, path="intermediate/step1.parquet")
intermediate2 = provider.bucket(bucket=BUCKET, path="intermediate/step2.parquet")
output = provider.bucket(bucket=BUCKET, path="output/result.parquet")


@local_exec.task()
def extract(df: pl.LazyFrame) -> pl.LazyFrame:
    """Extract and filter."""
    return df.filter(pl.col("value").is_not_null())


@lambda_exec.task(retries=2)
def transform(df: pl.LazyFrame) -> pl.LazyFrame:
    """Transform data."""
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@lambda_exec.task(cache=True)
def aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
    """Aggregate by category."""
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


pipeline = (
    Pipeline(name="etl")
    .source(raw_data)
    .transform(extract)
    .to(intermediate1)
    .transform(transform)
    .to(intermediate2)
    .transform(aggregate)
    .to(output)
)


def _run_on_moto() -> int:
    """Start moto's S3 on 127.0.0.1, load sample data, run every step on this machine."""
    import importlib.util
    import logging

    import boto3

    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        print(
            f"--moto needs moto's S3 server, which is not installed ({exc.name or 'moto'}): "
            'pip install -e "packages/glacier-aws[testing]" from the repository\'s root',
            file=sys.stderr,
        )
        return 2

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        # Load this file again with AWS_ENDPOINT_URL set: the same pipeline, on moto.
        os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
        spec = importlib.util.spec_from_file_location("aws_etl", __file__)
        assert spec is not None and spec.loader is not None
        etl = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(etl)
        boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(Bucket=BUCKET)
        sample = pl.select(id=pl.int_range(100_000)).with_columns(
            category=pl.format("c{}", pl.col("id") % 10),
            value=pl.when(pl.col("id") % 13 == 0).then(None).otherwise(pl.col("id") / 7),
        )
        options = etl.raw_data.storage.storage_options()
        sample.write_parquet(etl.raw_data.uri, storage_options=options)
        result = etl.pipeline.run(mode="local")
        print(result.summary())
        print(etl.pipeline.visualize())
        print(pl.read_parquet(etl.output.uri, storage_options=options))
        return 0 if result.ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    if "--moto" in sys.argv:
        raise SystemExit(_run_on_moto())
    print(__doc__)
