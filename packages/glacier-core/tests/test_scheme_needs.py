"""A function's artifact carries the storage of every other plugin's scheme its steps touch, and nothing for the rest.

Besides, it carries as code (no requirements) every plugin the function's module uses, so
that the module imports inside the function; this module uses glacier-local's config.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
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


#: What this module's use of ``LocalConfig`` adds to every function defined here.
LOCAL = (Carried("glacier-local", "glacier_local", skip=frozenset({"testing"})),)


def test_a_function_reading_a_plugins_scheme_carries_the_plugin_and_its_function_requirements(scratch_plugin: None) -> None:
    needs = scheme_needs([_function("scratch://lake/raw/*.parquet", "file:///out/x.parquet")], equipped={"glacier-aws"})
    assert needs == SchemeNeeds(("scratch",), (Carried("scratch-store", "scratch_store", skip=frozenset({"testing"})),), ("fsspec", "scratch-client"), LOCAL)


def test_the_builders_own_schemes_and_the_core_ones_need_nothing(scratch_plugin: None) -> None:
    assert scheme_needs([_function("scratch://lake/in.parquet", "file:///out/x.parquet")], equipped={"scratch-store"}) == SchemeNeeds(plugins=LOCAL)
    assert scheme_needs([_function("file:///in/x.parquet", "memory://out/x.parquet")], equipped=()) == SchemeNeeds(plugins=LOCAL)
    assert scheme_needs([_function("file:///in/x.parquet", "memory://out/x.parquet")], equipped={"glacier-local"}) == SchemeNeeds()
    assert scheme_needs([], equipped=()) == SchemeNeeds()


MIXED_MODULE = """
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, LocalConfig

aws = Provider(config=AwsConfig(region="us-east-1"))
lambdas = aws.serverless()
azure = Provider(config=AzureConfig(storage_account="lake"))
here = Provider(config=LocalConfig(root="/"))


@here.local().task()
def step(df):
    return df
"""


def test_a_module_built_on_other_providers_carries_their_plugins_as_code_without_their_storage(tmp_path: Path) -> None:
    """A pipeline over several clouds imports in a function of each: the plugins come, their storage libraries do not."""
    (tmp_path / "mixed_module.py").write_text(textwrap.dedent(MIXED_MODULE))
    spec = importlib.util.spec_from_file_location("mixed_module", tmp_path / "mixed_module.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mixed_module"] = module
    try:
        spec.loader.exec_module(module)
        pipeline = Pipeline(name="p").source(Bucket.from_uri("file:///in/x.parquet")).transform(module.step).to(Bucket.from_uri("file:///out/x.parquet"))
        (inst,) = pipeline.build().topological_sort()
        function = FunctionSpec(inst.task, inst.task.executor, "step", "mixed_module", "step", tmp_path / "mixed_module.py", [inst])
        needs = scheme_needs([function], equipped={"glacier-gcp"})
    finally:
        del sys.modules["mixed_module"]
    assert needs.plugins == tuple(Carried(d, d.replace("-", "_"), skip=frozenset({"testing"})) for d in ("glacier-aws", "glacier-azure", "glacier-local"))
    assert (needs.schemes, needs.carried, needs.requirements) == ((), (), ())  # no step touches s3:// or az://
    assert needs.all_carried == needs.plugins
