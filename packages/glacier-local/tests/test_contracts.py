"""glacier-local passes every contract suite that applies to it (it deploys nothing: no infrastructure)."""

from __future__ import annotations

from glacier.testing import AtomicCommitContract, BucketContract, ExecutorContract, HandlerContract, PluginContract, RunSemanticsContract

from .fixtures import LocalFixtures, MemoryFixtures, WorkerFixtures


class TestLocalPlugin(PluginContract, LocalFixtures):
    pass


class TestFileBuckets(BucketContract, AtomicCommitContract, LocalFixtures):
    pass


class TestMemoryBuckets(BucketContract, AtomicCommitContract, MemoryFixtures):
    pass


class TestInProcessExecutor(ExecutorContract, LocalFixtures):
    pass


class TestWorkerProcessExecutor(ExecutorContract, WorkerFixtures):
    pass


class TestWorkerAsHandler(HandlerContract, LocalFixtures):
    pass


class TestFileRunSemantics(RunSemanticsContract, LocalFixtures):
    pass


class TestMemoryRunSemantics(RunSemanticsContract, MemoryFixtures):
    pass
