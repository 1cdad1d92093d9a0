"""The seed's Azure pipeline: Blob Storage buckets, one local step and two Azure Functions steps.

    raw (Blob) → extract (local) → step1 (Blob) → transform (Azure Functions) → step2 (Blob)
               → aggregate (Azure Functions) → result (Blob)

Try it without an Azure subscription, on Azurite on this machine (every step runs here).
Azurite is npm's ``azurite``: taken from PATH, or installed once by npm into
``$GLACIER_CACHE_DIR/node`` (Node.js and npm must be installed). From the repository's root:

    pip install -e packages/glacier-core -e packages/glacier-local -e "packages/glacier-azure[testing]"
    python examples/azure_etl.py --azurite

With an Azure subscription (``az login``, or a managed or workload identity):

    glacier generate examples/azure_etl.py --out infra    # Terraform (azurerm) + the Flex Consumption zip
    terraform -chdir=infra init && terraform -chdir=infra apply
    glacier run examples/azure_etl.py --mode cloud        # local step here, the others on Azure Functions

Settings come from the environment: GLACIER_AZURE_ACCOUNT (the storage account,
default glacierdemolake), GLACIER_AZURE_LOCATION (default eastus),
GLACIER_DATA_CONTAINER (default data-lake) and GLACIER_AZURE_BLOB_ENDPOINT /
GLACIER_AZURE_QUEUE_ENDPOINT (other endpoints, optional).
"""

from __future__ import annotations

import os
import sys

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import AzureConfig, AzureFunctionConfig

CONTAINER = os.environ.get("GLACIER_DATA_CONTAINER", "data-lake")
_QUEUE = os.environ.get("GLACIER_AZURE_QUEUE_ENDPOINT")

provider = Provider(
    config=AzureConfig(
        storage_account=os.environ.get("GLACIER_AZURE_ACCOUNT", "glacierdemolake"),
        location=os.environ.get("GLACIER_AZURE_LOCATION", "eastus"),
        endpoint_url=os.environ.get("GLACIER_AZURE_BLOB_ENDPOINT"),
        service_endpoints={"queue": _QUEUE} if _QUEUE else {},
    )
)
local_exec = provider.local()
functions = provider.serverless(config=AzureFunctionConfig(memory=2048, timeout=1800))

raw_data = provider.bucket(bucket=CONTAINER, path="raw/data.parquet")
intermediate1 = provider.bucket(bucket=CONTAINER, path="intermediate/step1.parquet")
intermediate2 = provider.bucket(bucket=CONTAINER, path="intermediate/step2.parquet")
output = provider.bucket(bucket=CONTAINER, path="output/result.parquet")


@local_exec.task()
def extract(df: pl.LazyFrame) -> pl.LazyFrame:
    """Extract and filter."""
    return df.filter(pl.col("value").is_not_null())


@functions.task(retries=2)
def transform(df: pl.LazyFrame) -> pl.LazyFrame:
    """Transform data."""
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@functions.task(cache=True)
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


def _run_on_azurite() -> int:
    """Start Azurite on 127.0.0.1, load sample data, run every step on this machine."""
    import importlib.util

    try:
        from glacier_azure.testing.azurite import Azurite
    except ImportError as exc:  # pragma: no cover - glacier-azure is what this example is about
        print(f"--azurite needs glacier-azure ({exc.name}): pip install -e \"packages/glacier-azure[testing]\" from the repository's root", file=sys.stderr)
        return 2
    try:
        azurite = Azurite().__enter__()
    except RuntimeError as exc:
        print(f"--azurite could not start Azurite: {exc}", file=sys.stderr)
        return 2
    try:
        # Load this file again pointed at Azurite: the same pipeline, on its development account.
        os.environ.update(GLACIER_AZURE_ACCOUNT="devstoreaccount1", GLACIER_AZURE_BLOB_ENDPOINT=azurite.blob_endpoint,
                          GLACIER_AZURE_QUEUE_ENDPOINT=azurite.queue_endpoint, **azurite.environment())  # fmt: skip
        spec = importlib.util.spec_from_file_location("azure_etl", __file__)
        assert spec is not None and spec.loader is not None
        etl = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(etl)
        azurite.create_container(CONTAINER)
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
        azurite.stop()


if __name__ == "__main__":
    if "--azurite" in sys.argv:
        raise SystemExit(_run_on_azurite())
    print(__doc__)
