"""The access model names what a step really touches, from the names the step code uses."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from local_buckets import path_of, write

from glacier import Bucket, Pipeline, Provider
from glacier.infra.access import Listing, StepAccess, function_access, listing_for_read, step_access
from glacier.infra.generate import FunctionSpec


def _step(provider: Provider, source: Bucket, target: Bucket, *, cache: bool) -> Pipeline:
    @provider.local().task(name="same", cache=cache)
    def same(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    return Pipeline(name="one").source(source).transform(same).to(target)


def test_what_a_cached_step_leaves_beside_its_target_is_what_the_access_model_names(provider: Provider) -> None:
    source = provider.bucket(bucket="lake", path="raw/in.parquet")
    target = provider.bucket(bucket="lake", path="out/result.parquet")
    write(source, pl.DataFrame({"v": [1, 2]}))
    pipeline = _step(provider, source, target, cache=True)
    access = step_access(pipeline.build().topological_sort()[0])
    assert pipeline.run(mode="local").ok
    written = {f"file://{p}" for p in map(str, Path(path_of(target)).parent.iterdir())}
    assert written == set(access.writes)  # the target and the cache record the run wrote
    assert set(access.writes) <= set(access.reads)  # both are read back (footer, record)
    assert source.uri in access.reads


def test_a_step_on_a_store_without_atomic_uploads_writes_temporaries_beside_its_target_and_record(provider: Provider) -> None:
    target = provider.bucket(bucket="lake", path="out/result.parquet")
    step = _step(provider, provider.bucket(bucket="lake", path="raw/in.parquet"), target, cache=True).build().topological_sort()[0]
    folder = target.uri.rpartition("/")[0]
    assert step_access(step).temporaries == {
        f"{folder}/.result.parquet.glacier-tmp-*",
        f"{folder}/..result.parquet.glacier.json.glacier-tmp-*",
    }
    assert Listing(f"{folder}/", deeper=False) in step_access(step).lists  # cleaning a dead writer's debris


def test_an_uncached_step_writes_only_its_target(provider: Provider) -> None:
    target = provider.bucket(bucket="lake", path="out/result.parquet")
    step = _step(provider, provider.bucket(bucket="lake", path="raw/in.parquet"), target, cache=False).build().topological_sort()[0]
    assert step_access(step).writes == {target.uri}


@pytest.mark.parametrize(
    ("uri", "listing"),
    [
        ("s3://lake/raw/*.parquet", Listing("s3://lake/raw/", deeper=True)),
        ("s3://lake/raw/2024-*/part.parquet", Listing("s3://lake/raw/", deeper=True)),
        ("s3://lake/raw/**/day=1/*.parquet", Listing("s3://lake/raw/", deeper=True)),
        ("s3://lake/*.parquet", Listing("s3://lake/", deeper=True)),
        ("s3://lake/raw/day=1/data.parquet", Listing("s3://lake/raw/day=1/data.parquet/", deeper=False)),
    ],
    ids=["glob", "glob-in-folder-name", "recursive-glob", "glob-at-root", "plain-key"],
)
def test_a_glob_is_listed_under_the_folder_before_its_first_glob_character(uri: str, listing: Listing) -> None:
    assert listing_for_read(uri) == listing


def test_a_functions_access_is_the_union_of_its_steps(provider: Provider) -> None:
    @provider.local().task(name="same")
    def same(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    a, b = (provider.bucket(bucket="lake", path=f"{n}.parquet") for n in "ab")
    c, d = (provider.bucket(bucket="lake", path=f"out/{n}.parquet") for n in "cd")
    first = Pipeline(name="one").source(a).transform(same).to(c)
    second = Pipeline(name="two").source(b).transform(same).to(d)
    steps = Pipeline.compose(first, second, name="both").build().topological_sort()
    spec = FunctionSpec(task=same, executor=same.executor, name="both-same", module="m", qualname="same", source_file=Path("m.py"), steps=steps)
    union = function_access(spec)
    assert union == step_access(steps[0]) | step_access(steps[1])
    assert union.writes == {c.uri, d.uri}
    assert union.only(["s3"]) == StepAccess()
