"""A function's artifact carries the storage of every other plugin's scheme its steps touch, and nothing for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from glacier import Bucket, Pipeline, Provider, hookimpl
from glacier.config import LocalConfig
from glacier.infra.artifact import Carried, SchemeNeeds, scheme_needs
from glacier.infra.generate import FunctionSpec
from glacier.plugins.registry import Scheme, clear_caches, get_plugin_manager


class ScratchPlugin:
    """A third party's plugin: ``scratch://`` served by ``scratch_store.storage``, needing ``scratch-client`` in a function."""

    @hookimpl
    def glacier_storage_schemes(self) -> list[Scheme]:
        return [Scheme("scratch", "scratch_store.storage:ScratchStorage", package="scratch-store", provider="scratch", function_requirements=("scratch-client", "fsspec"))]


@pytest.fixture
def scratch_plugin() -> Iterator[None]:
    pm = get_plugin_manager()
    pm.register(ScratchPlugin(), name="scratch-test")
    clear_caches()
    yield
    pm.unregister(name="scratch-test")
    clear_caches()


def _function(source: str, target: str) -> FunctionSpec:
    @Provider(config=LocalConfig(root="/")).local().task
    def step(df):  # noqa: ANN001, ANN202
        return df

    pipeline = Pipeline(name="p").source(Bucket.from_uri(source)).transform(step).to(Bucket.from_uri(target))
    (inst,) = pipeline.build().topological_sort()
    return FunctionSpec(inst.task, inst.task.executor, "step", "p", "step", Path("p.py"), [inst])


def test_a_function_reading_a_plugins_scheme_carries_the_plugin_and_its_function_requirements(scratch_plugin: None) -> None:
    needs = scheme_needs([_function("scratch://lake/raw/*.parquet", "file:///out/x.parquet")], equipped={"glacier-aws"})
    assert needs == SchemeNeeds(("scratch",), (Carried("scratch-store", "scratch_store", skip=frozenset({"testing"})),), ("fsspec", "scratch-client"))


def test_the_builders_own_schemes_and_the_core_ones_need_nothing(scratch_plugin: None) -> None:
    assert scheme_needs([_function("scratch://lake/in.parquet", "file:///out/x.parquet")], equipped={"scratch-store"}) == SchemeNeeds()
    assert scheme_needs([_function("file:///in/x.parquet", "memory://out/x.parquet")], equipped=()) == SchemeNeeds()
    assert scheme_needs([], equipped=()) == SchemeNeeds()
