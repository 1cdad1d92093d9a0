"""A one-step pipeline whose Lambda function writes Azure Blob: what tests/test_runtime_identity_deployed.py deploys.

    raw (S3) → stamp (Lambda) → stamped (Azure Blob)

No federation trusts an AWS role on Azure: the function reads its Entra application's
client secret from Secrets Manager at run time. The task writes the SHA-256 of what it
finds in ``AZURE_CLIENT_SECRET`` next to each row, so the test can tell the secret
arrived without the secret itself being written anywhere.
"""

from __future__ import annotations

import hashlib
import os
import sys

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, LambdaConfig

PYTHON = f"3.{sys.version_info.minor}"
ARCH = "arm64" if os.uname().machine in ("aarch64", "arm64") else "x86_64"
env = os.environ

aws = Provider(config=AwsConfig(region="us-east-1", endpoint_url=env["MOTO"], service_endpoints={"lambda": env["LAMBDA"]}))
azure = Provider(config=AzureConfig(storage_account="devstoreaccount1", endpoint_url=env["AZURITE_BLOB"]))
lambdas = aws.serverless(config=LambdaConfig(memory=1024, timeout=60, runtime=f"python{PYTHON}", architecture=ARCH))

raw = aws.bucket(bucket=env["RAW_BUCKET"], path="raw/values.parquet")
stamped = azure.bucket(bucket=env["LAKE_CONTAINER"], path="stamped/values.parquet")


@lambdas.task()
def stamp(df: pl.LazyFrame) -> pl.LazyFrame:
    """Each row with the SHA-256 of the client secret this function holds (empty if none)."""
    held = hashlib.sha256(os.environ.get("AZURE_CLIENT_SECRET", "").encode()).hexdigest()
    return df.with_columns(secret_sha256=pl.lit(held))


pipeline = Pipeline(name="identity-lambda").source(raw).transform(stamp).to(stamped)
