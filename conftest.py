"""Repository-wide test settings: every test keeps its run records to itself."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run records go to a fresh directory per test, never to the working tree."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("GLACIER_STATE_DIR", str(state))
    return state


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> None:
    """The names the docstring examples share, as ``glacier.Pipeline``'s own example defines them.

    A class docstring's example defines ``provider``, ``raw``, ``intermediate``,
    ``output``, ``extract`` and ``aggregate``; the method examples below it use them
    (and ``pipeline``, a pipeline with ``raw`` as its source). Each doctest gets them
    fresh, on a local provider whose root is a new temporary directory with a small
    ``raw`` parquet file in it; ``tmp`` is an empty temporary directory.
    """
    import polars as pl

    from glacier import Pipeline, Provider
    from glacier.config import LocalConfig

    root = tmp_path_factory.mktemp("doc")
    provider = Provider(config=LocalConfig(root=str(root)))
    local = provider.local()
    raw = provider.bucket(bucket="lake", path="raw.parquet")
    intermediate = provider.bucket(bucket="lake", path="clean.parquet")
    output = provider.bucket(bucket="lake", path="totals.parquet")
    (root / "lake").mkdir()
    pl.DataFrame({"category": ["a", "b", "a"], "value": [1.0, None, 2.0]}).write_parquet(root / "lake" / "raw.parquet")

    @local.task()
    def extract(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.filter(pl.col("value").is_not_null())

    @local.task()
    def aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.group_by("category").agg(pl.col("value").sum())

    doctest_namespace.update(
        tmp=tmp_path_factory.mktemp("doc-empty"),
        provider=provider,
        local=local,
        raw=raw,
        intermediate=intermediate,
        output=output,
        extract=extract,
        aggregate=aggregate,
        pipeline=Pipeline(name="etl").source(raw),
    )
