"""mode="analyze": waves, executors, schemas from metadata, transfers and limits."""

from __future__ import annotations

import polars as pl
from local_buckets import write

from glacier import Pipeline, Provider


def add_total(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns((pl.col("price") * pl.col("qty")).alias("total"))


def by_shop(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.group_by("shop").agg(pl.col("total").sum())


def needs_missing_column(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.select(pl.col("nope"))


def test_analyze_derives_each_steps_schema_from_the_sources_footer(provider: Provider) -> None:
    local = provider.local()
    raw = provider.bucket(bucket="d", path="sales.parquet")
    write(raw, pl.DataFrame({"shop": ["a"], "price": [2.0], "qty": [3]}))
    mid, out = provider.bucket(bucket="d", path="mid.parquet"), provider.bucket(bucket="d", path="out.parquet")
    p = Pipeline("a").source(raw).transform(local.task(add_total)).to(mid).transform(provider.serverless().task(by_shop)).to(out)
    analysis = p.run(mode="analyze")
    assert analysis.ok, str(analysis)
    assert analysis.waves == [["add_total"], ["by_shop"]]
    assert analysis.steps["add_total"].output_schema == {"shop": "String", "price": "Float64", "qty": "Int64", "total": "Float64"}
    assert analysis.steps["by_shop"].output_schema == {"shop": "String", "total": "Float64"}
    assert analysis.steps["by_shop"].executor == "process"
    assert not mid.exists() and not out.exists()  # nothing ran, nothing was written
    assert "wave 2:" in str(analysis) and "by_shop [process on local]" in str(analysis)


def test_analyze_reports_schema_problems_and_missing_sources(provider: Provider) -> None:
    local = provider.local()
    raw = provider.bucket(bucket="d", path="sales.parquet")
    write(raw, pl.DataFrame({"shop": ["a"]}))
    bad = Pipeline("b").source(raw).transform(local.task(needs_missing_column)).to(provider.bucket(bucket="d", path="x.parquet"))
    missing = Pipeline("m").source(provider.bucket(bucket="d", path="absent.parquet")).transform(local.task(add_total)).to(provider.bucket(bucket="d", path="y.parquet"))
    analysis = Pipeline.compose(bad, missing, name="both").run(mode="analyze")
    assert not analysis.ok
    assert any("needs_missing_column: the task does not fit" in p and "nope" in p for p in analysis.problems)
    assert any("add_total: cannot read the schema of source" in p and "absent.parquet" in p for p in analysis.problems)
