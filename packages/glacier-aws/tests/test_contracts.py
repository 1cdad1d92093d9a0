"""glacier-aws passes every contract suite, over real protocols on 127.0.0.1."""

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

from .fixtures import AwsFixtures


class TestAwsPlugin(PluginContract, AwsFixtures):
    pass


class TestS3Buckets(BucketContract, AtomicCommitContract, AwsFixtures):
    pass


class TestLambdaExecutor(ExecutorContract, AwsFixtures):
    pass


class TestLambdaHandler(HandlerContract, AwsFixtures):
    pass


class TestAwsInfrastructure(InfrastructureContract, AwsFixtures):
    pass


class TestS3RunSemantics(RunSemanticsContract, AwsFixtures):
    pass
