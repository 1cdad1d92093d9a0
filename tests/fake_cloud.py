"""A test-only second cloud, "fakecloud", registered as a plugin through Glacier's hooks.

It stands in for a provider package (glacier-gcp, glacier-azure) where the tests need a
cloud other than AWS and this machine: ``fakecloud://BUCKET/PATH`` buckets are real
objects in fsspec's memory filesystem (so their sizes come from real metadata), its
serverless executor runs elsewhere (``runs_here = False``), it prices its egress through
``glacier_egress_prices`` and generates Terraform blocks of its own provider through
``glacier_codegen_targets``. Use :func:`registered` to add it for one test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from glacier.infra.terraform import terraform_identifier
from glacier.plugins import (
    CodegenTarget,
    EgressPrice,
    ExecutorKind,
    ProviderBackend,
    RemoteExecutor,
    Scheme,
    Storage,
    get_plugin_manager,
    hookimpl,
)
from glacier.plugins.registry import clear_caches

NAME = "fakecloud"
#: Its made-up price, unlike every real one, so a test can tell it was used.
USD_PER_GB = 0.5


@dataclass(frozen=True)
class FakeCloudConfig:
    """The fake cloud's provider config."""

    project: str = "demo"


@dataclass(frozen=True)
class FakeFunctionConfig:
    """The fake cloud's function config."""

    memory: int = 256


class FakeCloudBackend(ProviderBackend):
    name: ClassVar[str] = NAME
    scheme: ClassVar[str] = NAME

    def default_serverless_config(self) -> Any:
        return FakeFunctionConfig()


class FakeCloudStorage(Storage):
    """``fakecloud://bucket/path`` as ``/fakecloud/bucket/path`` in fsspec's memory filesystem."""

    protocol: ClassVar[str] = NAME
    native: ClassVar[bool] = False

    def make_filesystem(self) -> Any:
        from fsspec.implementations.memory import MemoryFileSystem

        return MemoryFileSystem()

    def path(self, uri: str) -> str:
        return f"/{NAME}/" + uri.split("://", 1)[1]

    def prepare_target(self, uri: str) -> None:
        pass


class FakeFunctionExecutor(RemoteExecutor):
    kind: ClassVar[str] = "fakefunction"
    function_label: ClassVar[str] = "fake function"

    def invoke_function(self, entry: Any, payload: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - never deployed
        raise NotImplementedError


def generate(plan: Any) -> None:
    """The fake cloud's share of one root module: its provider, a variable, buckets and functions."""
    module = plan.module
    module.required_provider(NAME, "example/fakecloud", "~> 1.0")
    project = module.variable("fakecloud_project", type="string", default="demo", description="The fake cloud's project.")
    module.provider(NAME, project=project)
    for bucket in plan.buckets:
        module.resource("fakecloud_bucket", terraform_identifier(bucket.bucket), {"name": bucket.bucket})
    for spec in plan.functions:
        ident = terraform_identifier(spec.name.replace("-", "_"))
        function = module.resource("fakecloud_function", ident, {"name": spec.name, "memory": spec.executor.config.memory})
        module.output(f"{ident}_function_name", function.name, description=f"The fake function of task {spec.task.name}.")
        from glacier.plugins.deployment import DeploymentEntry

        plan.manifest[spec.task.name] = DeploymentEntry(spec.name, spec.module, spec.qualname, NAME, spec.executor.kind, {})


class Plugin:
    """The hooks, as one object so a test can register and unregister it."""

    @hookimpl
    def glacier_configs(self) -> list[type]:
        return [FakeCloudConfig, FakeFunctionConfig]

    @hookimpl
    def glacier_provider_for_config(self, config: Any) -> ProviderBackend | None:
        return FakeCloudBackend(config) if isinstance(config, FakeCloudConfig) else None

    @hookimpl
    def glacier_storage_schemes(self) -> list[Scheme]:
        return [Scheme(NAME, "fake_cloud:FakeCloudStorage", package="fake-cloud", provider=NAME)]

    @hookimpl
    def glacier_executor_kinds(self) -> list[ExecutorKind]:
        return [ExecutorKind("fakefunction", "fake_cloud:FakeFunctionExecutor", config="fake_cloud:FakeFunctionConfig", provider=NAME)]

    @hookimpl
    def glacier_codegen_targets(self) -> list[CodegenTarget]:
        return [CodegenTarget("terraform-fakecloud", NAME, "fake_cloud:generate")]

    @hookimpl
    def glacier_egress_prices(self) -> list[EgressPrice]:
        return [EgressPrice(NAME, USD_PER_GB, "https://fakecloud.invalid/pricing", "2026-12-02", "test-only")]


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """The fake cloud's plugin, registered for the ``with`` block."""
    pm = get_plugin_manager()
    pm.register(Plugin(), name="test-fake-cloud")
    clear_caches()
    try:
        yield
    finally:
        pm.unregister(name="test-fake-cloud")
        clear_caches()
