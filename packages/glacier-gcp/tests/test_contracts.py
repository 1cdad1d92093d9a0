"""glacier-gcp passes every contract suite, over real protocols on 127.0.0.1."""

from __future__ import annotations

from glacier.testing import (
    AtomicCommitContract,
    BucketContract,
    ExecutorContract,
    HandlerContract,
    InfrastructureContract,
    PluginContract,
    RunSemanticsContract,
)

from .fixtures import GcpFixtures


class TestGcpPlugin(PluginContract, GcpFixtures):
    pass


class TestGcsBuckets(BucketContract, AtomicCommitContract, GcpFixtures):
    pass


class TestCloudFunctionExecutor(ExecutorContract, GcpFixtures):
    pass


class TestCloudFunctionHandler(HandlerContract, GcpFixtures):
    pass


class TestGcpInfrastructure(InfrastructureContract, GcpFixtures):
    pass


class TestGcsRunSemantics(RunSemanticsContract, GcpFixtures):
    pass
