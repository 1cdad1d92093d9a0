"""glacier-azure passes every contract suite, over real protocols on 127.0.0.1."""

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

from .fixtures import AzureFixtures


class TestAzurePlugin(PluginContract, AzureFixtures):
    pass


class TestBlobBuckets(BucketContract, AtomicCommitContract, AzureFixtures):
    pass


class TestAzureFunctionsExecutor(ExecutorContract, AzureFixtures):
    pass


class TestAzureFunctionsHandler(HandlerContract, AzureFixtures):
    pass


class TestAzureInfrastructure(InfrastructureContract, AzureFixtures):
    pass


class TestBlobRunSemantics(RunSemanticsContract, AzureFixtures):
    pass
