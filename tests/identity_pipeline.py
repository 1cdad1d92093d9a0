"""A one-step pipeline whose Cloud Function reads and writes S3: what tests/test_runtime_identity_deployed.py deploys.

    raw (S3) → double (Cloud Functions) → doubled (S3)

The function has no AWS key: in the clouds it reaches S3 as the role Terraform creates
for it, with its own Google ID token. Where moto and the functions harness are comes
from the environment, here and in the function alike.
"""

from __future__ import annotations

import os
import sys

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import AwsConfig, CloudFunctionConfig, GcpConfig

PYTHON = f"3{sys.version_info.minor}"
env = os.environ

aws = Provider(config=AwsConfig(region="us-east-1", endpoint_url=env["MOTO"]))
gcp = Provider(config=GcpConfig(project=env["GCP_PROJECT"], region="europe-west1", service_endpoints={"functions": env["FUNCTIONS"]}))
cloud_functions = gcp.serverless(config=CloudFunctionConfig(memory=1024, timeout=60, runtime=f"python{PYTHON}"))

raw = aws.bucket(bucket=env["RAW_BUCKET"], path="raw/values.parquet")
doubled = aws.bucket(bucket=env["RAW_BUCKET"], path="doubled/values.parquet")


@cloud_functions.task()
def double(df: pl.LazyFrame) -> pl.LazyFrame:
    """``value * 2`` as ``doubled``."""
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


pipeline = Pipeline(name="identity").source(raw).transform(double).to(doubled)
