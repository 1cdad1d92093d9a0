"""Module-level tasks for the contract suites, importable wherever a step runs.

They are plain functions (any executor's ``task()`` can wrap them) and import only
polars, so they also load inside a serverless artifact.
"""

from __future__ import annotations

import time

import polars as pl

__all__ = ["double_value", "fail_loudly", "return_wrong_type", "sleep_past_timeout", "join_by_id"]


def double_value(df: pl.LazyFrame) -> pl.LazyFrame:
    """``value * 2`` as ``doubled``."""
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


def fail_loudly(df: pl.LazyFrame) -> pl.LazyFrame:
    """Always raises ``RuntimeError("contract failure")``."""
    raise RuntimeError("contract failure")


def return_wrong_type(df: pl.LazyFrame) -> dict[str, int]:
    """Returns a dict instead of a frame."""
    return {"not": 1}


def sleep_past_timeout(df: pl.LazyFrame) -> pl.LazyFrame:
    """Sleeps 60 seconds: longer than any contract test's timeout."""
    time.sleep(60)
    return df


def join_by_id(left: pl.LazyFrame, right: pl.LazyFrame) -> pl.LazyFrame:
    """Inner join of two sources on ``id``."""
    return left.join(right, on="id")
