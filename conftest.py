"""Repository-wide test settings: every test keeps its run records to itself, and the
session leaves nothing in the checkout or the home directory but Glacier's cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import footprint

ROOT = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis keeps its example database and constants in a temporary folder, not ``.hypothesis/`` in the checkout."""
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="glacier-hypothesis-"))


@pytest.fixture(scope="session", autouse=True)
def _leaves_no_footprint() -> Iterator[None]:
    """Fail the session if any test wrote into the checkout or ``$HOME`` (see tests/footprint.py).

    Glacier's cache is allowed (``GLACIER_CACHE_DIR``, by default ``~/.cache/glacier``),
    and so are the tools' own folders that ``hatch test`` fills before the tests start.
    """
    home = Path.home()
    allowed = [*footprint.TOOLS]
    cache = footprint.cache_dir()
    if cache.is_relative_to(home):
        allowed.append(str(cache.relative_to(home)))
    checkout, home_files = footprint.snapshot(ROOT), footprint.snapshot(home, allowed)
    yield
    wrote = footprint.summary(ROOT, footprint.changes(checkout, footprint.snapshot(ROOT)))
    wrote += footprint.summary(home, footprint.changes(home_files, footprint.snapshot(home, allowed)))
    assert not wrote, "the tests wrote outside their temporary directories and Glacier's cache:\n" + "\n".join(wrote)


@pytest.fixture(scope="session", autouse=True)
def _session_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run records and manifests of session-, module- and class-scoped fixtures go to a temporary directory too."""
    state = tmp_path_factory.mktemp("session-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLACIER_STATE_DIR", str(state))
        yield state


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
