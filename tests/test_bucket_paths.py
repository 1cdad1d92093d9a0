"""A bucket stays inside its provider's root and its bucket, whichever provider made it."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from local_buckets import write

from glacier import Pipeline, Provider
from glacier.config import AwsConfig, LocalConfig
from glacier.errors import PipelineDefinitionError

ESCAPES = [
    pytest.param("lake", "../../escaped/x.parquet", id="path-up-twice"),
    pytest.param("..", "escaped/x.parquet", id="bucket-dot-dot"),
    pytest.param("lake/../../..", "escaped/x.parquet", id="bucket-climbing"),
]


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(("bucket", "path"), ESCAPES)
def test_a_path_leaving_its_root_is_refused(tmp_path: Path, bucket: str, path: str) -> None:
    root = tmp_path / "a" / "root"
    provider = Provider(config=LocalConfig(root=str(root)))
    raw = provider.bucket(bucket="lake", path="raw.parquet")
    write(raw, pl.DataFrame({"x": [1]}))

    @provider.local().task
    def keep(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    with pytest.raises(PipelineDefinitionError) as info:
        Pipeline("escape").source(raw).transform(keep).to(provider.bucket(bucket=bucket, path=path)).run()
    assert repr(bucket) in str(info.value)
    assert _files_under(tmp_path) == ["a/root/lake/raw.parquet"]  # nothing written outside the root


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(LocalConfig(root="memory://"), id="memory"),
        pytest.param(AwsConfig(region="us-east-1"), id="s3"),
    ],
)
@pytest.mark.parametrize(("bucket", "path"), ESCAPES)
def test_every_provider_refuses_a_path_leaving_its_bucket(config: object, bucket: str, path: str) -> None:
    with pytest.raises(PipelineDefinitionError, match="\n\nHint: "):
        Provider(config=config).bucket(bucket=bucket, path=path)


def test_a_local_uri_stays_under_the_root_after_normalizing(tmp_path: Path) -> None:
    provider = Provider(config=LocalConfig(root=str(tmp_path)))
    made = provider.bucket(bucket="lake", path="raw/x/../../a.parquet")
    assert made.uri == f"file://{tmp_path}/lake/a.parquet"


def test_the_local_backend_refuses_a_uri_outside_its_root_when_called_directly(tmp_path: Path) -> None:
    # Core normalizes before the backend sees a name; the backend checks its own root too.
    backend = Provider(config=LocalConfig(root=str(tmp_path / "root"))).backend
    with pytest.raises(PipelineDefinitionError, match="outside the root"):
        backend.bucket_uri("..", "x.parquet")


@pytest.mark.parametrize("name", ["Data_Lake", "-lake", "lake?x", "lake*"])
def test_s3_refuses_names_that_s3_does_not_allow(name: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=f"{re.escape(repr(name))} is not an S3 bucket name"):
        Provider(config=AwsConfig(region="us-east-1")).bucket(bucket=name, path="a.parquet")
