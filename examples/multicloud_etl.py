"""One pipeline over AWS, Google Cloud, Azure and this machine.

    events (S3) → clean_events (Lambda) → clean (GCS)
    clean (GCS) + categories (Azure Blob) → join_reference (Cloud Functions) → joined (Azure Blob)
    joined (Azure Blob) → aggregate (Azure Functions) → totals (Azure Blob)
    totals (Azure Blob) → report (this machine) → report (local disk)

Every hand-off is a bucket of the cloud that holds it, and each step reads and writes
the other clouds' buckets directly. The report step runs here: a function in a cloud
cannot write this machine's disk, so the Azure step writes its totals to Azure Blob. Try it without any cloud account, on the three
emulators on this machine (moto's S3, fake-gcs-server and Azurite; every step runs
here). From the repository's root:

    pip install -e packages/glacier-core -e packages/glacier-local \\
        -e "packages/glacier-aws[testing]" -e "packages/glacier-gcp[testing]" -e "packages/glacier-azure[testing]"
    python examples/multicloud_etl.py --emulators

It prints the run's summary, the graph (a subgraph per cloud, the crossings dotted),
what ``analyze`` says each crossing costs, the result, and the wall time of the same
work done in plain polars against the same emulators.

Settings come from the environment: GLACIER_AWS_REGION, GLACIER_GCP_PROJECT,
GLACIER_AZURE_ACCOUNT, the three buckets GLACIER_RAW_BUCKET (S3), GLACIER_MID_BUCKET
(GCS) and GLACIER_LAKE_CONTAINER (Azure), GLACIER_LOCAL_ROOT (the local report's
folder, default examples/data/multicloud), and the emulators' endpoints
GLACIER_S3_ENDPOINT, GLACIER_GCS_ENDPOINT and GLACIER_AZURE_BLOB_ENDPOINT.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, AzureFunctionConfig, CloudFunctionConfig, GcpConfig, LambdaConfig, LocalConfig

aws = Provider(config=AwsConfig(region=os.environ.get("GLACIER_AWS_REGION", "us-east-1"), endpoint_url=os.environ.get("GLACIER_S3_ENDPOINT")))
gcp = Provider(config=GcpConfig(project=os.environ.get("GLACIER_GCP_PROJECT", "glacier-demo"), endpoint_url=os.environ.get("GLACIER_GCS_ENDPOINT")))
azure = Provider(config=AzureConfig(storage_account=os.environ.get("GLACIER_AZURE_ACCOUNT", "glacierdemolake"), endpoint_url=os.environ.get("GLACIER_AZURE_BLOB_ENDPOINT")))
here = Provider(config=LocalConfig(root=os.environ.get("GLACIER_LOCAL_ROOT", "examples/data/multicloud")))

lambdas = aws.serverless(config=LambdaConfig(memory=2048, timeout=900))
cloud_functions = gcp.serverless(config=CloudFunctionConfig(memory=2048, timeout=1800))
azure_functions = azure.serverless(config=AzureFunctionConfig(memory=2048, timeout=1800))

events = aws.bucket(bucket=os.environ.get("GLACIER_RAW_BUCKET", "glacier-demo-raw"), path="events/data.parquet")
clean = gcp.bucket(bucket=os.environ.get("GLACIER_MID_BUCKET", "glacier-demo-mid"), path="clean/events.parquet")
categories = azure.bucket(bucket=os.environ.get("GLACIER_LAKE_CONTAINER", "lake"), path="reference/categories.parquet")
joined = azure.bucket(bucket=os.environ.get("GLACIER_LAKE_CONTAINER", "lake"), path="joined/events.parquet")
totals = azure.bucket(bucket=os.environ.get("GLACIER_LAKE_CONTAINER", "lake"), path="totals/by_category.parquet")
report = here.bucket(bucket="reports", path="totals.parquet")


@lambdas.task(retries=2)
def clean_events(df: pl.LazyFrame) -> pl.LazyFrame:
    """Drop the events without a value."""
    return df.filter(pl.col("value").is_not_null())


@cloud_functions.task(retries=1, cache=True)
def join_reference(events_df: pl.LazyFrame, categories_df: pl.LazyFrame) -> pl.LazyFrame:
    """Give each event its category's rank."""
    return events_df.join(categories_df, on="category")


@azure_functions.task(cache=True)
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
    name="multicloud_etl",
)


def sample_events(rows: int = 1_000_000) -> pl.DataFrame:
    """Events with id, category (c0..c9) and value (every 13th is null)."""
    return pl.select(id=pl.int_range(rows)).with_columns(
        category=pl.format("c{}", pl.col("id") % 10),
        value=pl.when(pl.col("id") % 13 == 0).then(None).otherwise(pl.col("id") / 7),
    )


def reference_categories() -> pl.DataFrame:
    """Each category's rank."""
    return pl.DataFrame({"category": [f"c{i}" for i in range(10)], "rank": [5, 3, 8, 1, 9, 2, 7, 4, 6, 10]})


def plain_polars(module: object) -> float:
    """The same work without Glacier, on the same stores; its wall time in seconds.

    polars reads every store natively; the three cloud writes go through each store's
    one-upload writer (polars' own sink cannot write to fake-gcs-server), the local one
    is polars' own.
    """
    m: Any = module
    started = time.perf_counter()
    options = {name: getattr(m, name).storage.storage_options() for name in ("events", "clean", "categories")}
    cleaned = pl.scan_parquet(m.events.uri, storage_options=options["events"]).filter(pl.col("value").is_not_null())
    m.clean.storage.write(cleaned.collect(), m.clean.uri + ".plain")
    ranks = pl.scan_parquet(m.categories.uri, storage_options=options["categories"])
    both = pl.scan_parquet(m.clean.uri + ".plain", storage_options=options["clean"]).join(ranks, on="category")
    m.joined.storage.write(both.collect(), m.joined.uri + ".plain")
    grouped = pl.scan_parquet(m.joined.uri + ".plain", storage_options=options["categories"]).group_by("category", "rank")
    m.totals.storage.write(grouped.agg(pl.col("value").sum(), pl.len().alias("events")).sort("category").collect(), m.totals.uri + ".plain")
    totals = pl.scan_parquet(m.totals.uri + ".plain", storage_options=options["categories"])
    local = m.report.uri.removeprefix("file://") + ".plain"
    os.makedirs(os.path.dirname(local), exist_ok=True)
    totals.with_columns(share=pl.col("events") / pl.col("events").sum()).collect().write_parquet(local)
    return time.perf_counter() - started


def _run_on_emulators() -> int:
    """Start moto's S3, fake-gcs-server and Azurite on 127.0.0.1, load sample data, run every step here."""
    import contextlib
    import importlib.util
    import tempfile
    import uuid

    try:
        import boto3

        from glacier_aws.testing.moto_server import moto_server
        from glacier_azure.testing.azurite import Azurite
        from glacier_gcp.testing.gcs_server import FakeGcsServer
    except ImportError as exc:  # pragma: no cover - the three packages are what this example is about
        print(f"--emulators needs the three provider packages with their testing extras ({exc.name}): see this file's docstring", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(moto_server())
        gcs = stack.enter_context(FakeGcsServer())
        azurite = stack.enter_context(Azurite())
        suffix = uuid.uuid4().hex[:8]
        # Only the emulators: fake keys for moto, Azurite's well-known key, no Google metadata server.
        os.environ.update(
            GLACIER_S3_ENDPOINT=moto.endpoint, GLACIER_GCS_ENDPOINT=gcs.endpoint, GLACIER_GCP_PROJECT=gcs.project,
            GLACIER_AZURE_ACCOUNT="devstoreaccount1", GLACIER_AZURE_BLOB_ENDPOINT=azurite.blob_endpoint,
            GLACIER_RAW_BUCKET=f"raw-{suffix}", GLACIER_MID_BUCKET=f"mid-{suffix}", GLACIER_LAKE_CONTAINER=f"lake-{suffix}",
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true",
            GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_ROOT="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9", NO_GCE_CHECK="True",
            GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false", **azurite.environment(),
        )  # fmt: skip
        os.environ.setdefault("GLACIER_LOCAL_ROOT", stack.enter_context(tempfile.TemporaryDirectory()))
        boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1").create_bucket(Bucket=f"raw-{suffix}")
        gcs.create_bucket(f"mid-{suffix}")
        azurite.create_container(f"lake-{suffix}")

        # Load this file again pointed at the emulators: the same pipeline, other endpoints.
        spec = importlib.util.spec_from_file_location("multicloud_etl", __file__)
        assert spec is not None and spec.loader is not None
        etl = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(etl)
        etl.events.storage.write(sample_events(), etl.events.uri)
        etl.categories.storage.write(reference_categories(), etl.categories.uri)

        # Once before timing anything, so clients, connections and imports are warm for both:
        # polars' own readers, and the fsspec client each bucket's storage builds on first use
        # (creating an S3 client alone costs about 0.2 s here).
        plain_polars(etl)
        for bucket in (etl.events, etl.clean, etl.categories, etl.joined, etl.totals):
            bucket.storage.exists(bucket.uri)
        started = time.perf_counter()
        result = etl.pipeline.run(mode="local")
        glacier_seconds = time.perf_counter() - started
        print(result.summary())
        print(etl.pipeline.visualize())
        analysis = etl.pipeline.run(mode="analyze")
        print("Crossings between clouds (bytes from the objects' metadata):")
        for c in analysis.crossings:
            usd = "unknown" if c.usd is None else f"${c.usd:.6f}"
            print(f"  {c.step} {c.direction} {c.uri}: {c.from_cloud} → {c.to_cloud}, {c.bytes or 0:,} bytes, {usd}")
        print(f"  estimated egress per run: ${analysis.egress_usd_per_run:.6f}")
        print(pl.read_parquet(etl.report.uri.removeprefix("file://")))
        polars_seconds = plain_polars(etl)
        print(f"wall time: glacier {glacier_seconds:.2f} s, plain polars {polars_seconds:.2f} s (ratio {glacier_seconds / polars_seconds:.2f})")
        return 0 if result.ok else 1


if __name__ == "__main__":
    if "--emulators" in sys.argv:
        raise SystemExit(_run_on_emulators())
    print(__doc__)
