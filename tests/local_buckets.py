"""Helpers to put data into and read it from local (file://) buckets in tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from glacier import Bucket


def path_of(bucket: Bucket) -> str:
    """The local file behind a file:// bucket."""
    return bucket.uri.removeprefix("file://")


def write(bucket: Bucket, frame: pl.DataFrame) -> None:
    """Put ``frame`` into a local bucket as parquet."""
    Path(path_of(bucket)).parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path_of(bucket))


def read(bucket: Bucket) -> pl.DataFrame:
    """Read a local bucket's parquet."""
    return pl.read_parquet(path_of(bucket))
