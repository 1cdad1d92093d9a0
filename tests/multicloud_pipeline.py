"""The three-cloud pipeline that tests/test_three_clouds_cloud.py generates, deploys and runs.

    events (S3) → clean_events (Lambda) → clean (GCS)
    clean (GCS) + categories (Azure Blob) → join_reference (Cloud Functions) → joined (Azure Blob)
    joined (Azure Blob) → aggregate (Azure Functions) → totals (Azure Blob)
    totals (Azure Blob) → report (this machine) → report (local disk)

A module, as a user writes one: it is imported by the CLI's loader on this machine and
again inside each function, which runs only its own step. Where the emulators and the
buckets are comes from the environment, here and in every function alike (the test
gives the functions the same variables at deploy time, as Terraform variables would).
The last step runs here: a function in a cloud cannot write this machine's disk.
"""

from __future__ import annotations

import os
import sys

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, AzureFunctionConfig, CloudFunctionConfig, GcpConfig, LambdaConfig, LocalConfig

PYTHON = f"3.{sys.version_info.minor}"  # every artifact must run on this interpreter
ARCH = "arm64" if os.uname().machine in ("aarch64", "arm64") else "x86_64"
env = os.environ

aws = Provider(config=AwsConfig(region="us-east-1", endpoint_url=env["MOTO"], service_endpoints={"lambda": env["LAMBDA"]}))
gcp = Provider(config=GcpConfig(project=env["GCP_PROJECT"], region="europe-west1", endpoint_url=env["GCS"], service_endpoints={"functions": env["FUNCTIONS"]}))
azure = Provider(config=AzureConfig(storage_account="devstoreaccount1", endpoint_url=env["AZURITE_BLOB"], service_endpoints={"queue": env["AZURITE_QUEUE"]}))
here = Provider(config=LocalConfig(root=env.get("REPORT_ROOT", ".")))

lambdas = aws.serverless(config=LambdaConfig(memory=1024, timeout=60, runtime=f"python{PYTHON}", architecture=ARCH))
cloud_functions = gcp.serverless(config=CloudFunctionConfig(memory=1024, timeout=60, runtime=f"python{PYTHON.replace('.', '')}"))
azure_functions = azure.serverless(config=AzureFunctionConfig(memory=2048, timeout=60, runtime=PYTHON))

events = aws.bucket(bucket=env["RAW_BUCKET"], path="events/data.parquet")
clean = gcp.bucket(bucket=env["MID_BUCKET"], path="clean/events.parquet")
categories = azure.bucket(bucket=env["LAKE_CONTAINER"], path="reference/categories.parquet")
joined = azure.bucket(bucket=env["LAKE_CONTAINER"], path="joined/events.parquet")
totals = azure.bucket(bucket=env["LAKE_CONTAINER"], path="totals/by_category.parquet")
report = here.bucket(bucket="reports", path="totals.parquet")


@lambdas.task()
def clean_events(df: pl.LazyFrame) -> pl.LazyFrame:
    """Drop the events without a value."""
    return df.filter(pl.col("value").is_not_null())


@cloud_functions.task()
def join_reference(events_df: pl.LazyFrame, categories_df: pl.LazyFrame) -> pl.LazyFrame:
    """Give each event its category's rank; reference data must name each category once."""
    duplicated = categories_df.group_by("category").len().filter(pl.col("len") > 1).collect()
    if duplicated.height:
        names = ", ".join(sorted(duplicated["category"]))
        raise ValueError(f"reference data names categories more than once: {names}")
    return events_df.join(categories_df, on="category")


@azure_functions.task()
def aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
    """Sum the values per category and rank."""
    return df.group_by("category", "rank").agg(pl.col("value").sum(), pl.len().alias("events")).sort("category")


@here.local().task()
def report_totals(df: pl.LazyFrame) -> pl.LazyFrame:
    """Bring the totals home, with each category's share of all events."""
    return df.with_columns(share=pl.col("events") / pl.col("events").sum())


pipeline = Pipeline.compose(
    Pipeline(name="clean").source(events).transform(clean_events).to(clean),
    Pipeline(name="join")
    .sources({"events_df": clean, "categories_df": categories})
    .transform(join_reference)
    .to(joined)
    .transform(aggregate)
    .to(totals)
    .transform(report_totals)
    .to(report),
    name="three_clouds",
)
