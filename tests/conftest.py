"""Shared fixtures for the cross-package tests: a local provider on a temporary root."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from glacier import Provider
from glacier.config import LocalConfig

#: Pipeline modules that the tests deploy: they read where the emulators are from the
#: environment at import, as a user's module reads its settings, so --doctest-modules
#: must not import them on its own.
collect_ignore_glob = ["*_pipeline.py", "*_pipeline_*.py"]


@pytest.fixture
def provider(tmp_path: Path) -> Provider:
    """A local provider whose buckets live under this test's temporary directory."""
    return Provider(config=LocalConfig(root=str(tmp_path)))


@pytest.fixture
def events() -> pl.DataFrame:
    """A small version of the benchmark's data: id, category, value (some null), ts."""
    n = 1000
    return pl.select(id=pl.int_range(n, dtype=pl.Int64)).with_columns(
        category=pl.format("c{}", pl.col("id") % 7),
        value=pl.when(pl.col("id") % 20 == 0).then(None).otherwise(pl.col("id").cast(pl.Float64) / 3),
        ts=pl.datetime(2026, 1, 1) + pl.duration(hours=pl.col("id")),
    )
