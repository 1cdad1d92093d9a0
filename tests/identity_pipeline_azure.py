"""A one-step pipeline whose Azure Function reads and writes S3: what tests/test_runtime_identity_deployed.py deploys.

    raw (S3) → double (Azure Functions) → doubled (S3)

The function app has no AWS key: in the clouds it reaches S3 as the role Terraform
creates for it, with its managed identity's Entra token. Where moto and Azurite are comes
from the environment, here and in the function alike.
"""

from __future__ import annotations

import os
import sys

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, AzureFunctionConfig

PYTHON = f"3.{sys.version_info.minor}"
env = os.environ

aws = Provider(config=AwsConfig(region="us-east-1", endpoint_url=env["MOTO"]))
azure = Provider(config=AzureConfig(storage_account="devstoreaccount1", endpoint_url=env["AZURITE_BLOB"], service_endpoints={"queue": env["AZURITE_QUEUE"]}))
azure_functions = azure.serverless(config=AzureFunctionConfig(memory=2048, timeout=60, runtime=PYTHON))

raw = aws.bucket(bucket=env["RAW_BUCKET"], path="raw/values.parquet")
doubled = aws.bucket(bucket=env["RAW_BUCKET"], path="doubled-on-azure/values.parquet")


@azure_functions.task()
def double(df: pl.LazyFrame) -> pl.LazyFrame:
    """``value * 2`` as ``doubled``."""
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


pipeline = Pipeline(name="identity-azure").source(raw).transform(double).to(doubled)
