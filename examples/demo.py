"""The Glacier demo: the seed's ETL on generated sample data, under local storage.

Run it with ``python examples/demo.py`` (or ``glacier run examples/demo.py``).

Three steps, each materialized to parquet by an explicit ``.to()``:

    raw → extract (drop null values) → clean → transform (doubled) → doubled
        → aggregate (sum by category) → by_category

plus a second branch that runs at the same time as ``transform``, because it only
reads ``clean``: the daily totals.
"""

from __future__ import annotations

import os
from datetime import datetime

import polars as pl

from glacier import Pipeline, Provider
from glacier.config import LocalConfig

ROOT = os.environ.get("GLACIER_DEMO_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))

provider = Provider(config=LocalConfig(root=ROOT))
local = provider.local()
workers = provider.serverless()  # each step in a worker process, through the JSON protocol

raw = provider.bucket(bucket="lake", path="raw/events.parquet")
clean = provider.bucket(bucket="lake", path="intermediate/clean.parquet")
doubled = provider.bucket(bucket="lake", path="intermediate/doubled.parquet")
by_category = provider.bucket(bucket="lake", path="output/by_category.parquet")
daily = provider.bucket(bucket="lake", path="output/daily.parquet")


@local.task()
def extract(df: pl.LazyFrame) -> pl.LazyFrame:
    """Keep the rows that have a value."""
    return df.filter(pl.col("value").is_not_null())


@workers.task(retries=1, timeout=120)
def transform(df: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``doubled = value * 2``."""
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


@local.task(cache=True)
def aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
    """Sum by category."""
    return df.group_by("category").agg(pl.col("value").sum(), pl.col("doubled").sum(), pl.len().alias("rows")).sort("category")


@local.task()
def daily_totals(df: pl.LazyFrame) -> pl.LazyFrame:
    """Sum by day."""
    return df.group_by(pl.col("ts").dt.date().alias("day")).agg(pl.col("value").sum()).sort("day")


etl = (
    Pipeline(name="demo_etl", description="The seed's ETL, on generated sample data")
    .source(raw)
    .transform(extract)
    .to(clean)
    .transform(transform)
    .to(doubled)
    .transform(aggregate)
    .to(by_category)
)
report = Pipeline(name="daily_report").source(clean).transform(daily_totals).to(daily)
demo = Pipeline.compose(etl, report, name="demo")


def make_sample_data(rows: int = 200_000) -> None:
    """Write ``rows`` generated events to the raw bucket (about 5% of values null)."""
    start = datetime(2026, 1, 1)
    frame = pl.select(id=pl.int_range(rows, dtype=pl.Int64)).with_columns(
        category=pl.format("cat-{}", (pl.col("id") * 7919) % 20),
        value=pl.when(pl.col("id") % 19 == 0).then(None).otherwise((pl.col("id") % 1000).cast(pl.Float64) / 10),
        ts=pl.lit(start) + pl.duration(minutes=pl.col("id")),
    )
    os.makedirs(os.path.dirname(raw.uri.removeprefix("file://")), exist_ok=True)
    frame.write_parquet(raw.uri.removeprefix("file://"))


def main() -> int:
    """Generate the data, run the pipeline with the CLI's display, print the graph."""
    from glacier.cli import main as cli

    make_sample_data()
    status = cli(["run", f"{__file__}:demo"])
    print()
    print(demo.visualize())
    print()
    print(pl.read_parquet(by_category.uri.removeprefix("file://")).head(5))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
