"""glacier-local passes the contract suites: file:// and memory:// buckets, both executors."""

from __future__ import annotations

from pathlib import Path

import pytest

from glacier import Bucket, Provider
from glacier.config import LocalConfig
from glacier.plugins.executor import Executor
from glacier.testing import AtomicCommitContract, BucketContract, ExecutorContract


class TestFileBuckets(BucketContract, AtomicCommitContract):
    @pytest.fixture
    def make_bucket(self, tmp_path: Path):  # noqa: ANN201
        provider = Provider(config=LocalConfig(root=str(tmp_path)))
        return lambda path: provider.bucket(bucket="contract", path=path)


class TestMemoryBuckets(BucketContract, AtomicCommitContract):
    @pytest.fixture
    def make_bucket(self, request: pytest.FixtureRequest):  # noqa: ANN201
        provider = Provider(config=LocalConfig(root="memory://"))
        folder = f"contract-{abs(hash(request.node.nodeid))}"
        yield lambda path: provider.bucket(bucket=folder, path=path)
        fs = Bucket.from_uri(f"memory://{folder}/x").storage.fs
        if fs.exists(f"/{folder}"):
            fs.rm(f"/{folder}", recursive=True)


class TestInProcessExecutor(ExecutorContract):
    @pytest.fixture
    def make_bucket(self, tmp_path: Path):  # noqa: ANN201
        provider = Provider(config=LocalConfig(root=str(tmp_path)))
        return lambda path: provider.bucket(bucket="contract", path=path)

    @pytest.fixture
    def executor(self, tmp_path: Path) -> Executor:
        return Provider(config=LocalConfig(root=str(tmp_path))).local()


class TestWorkerProcessExecutor(TestInProcessExecutor):
    @pytest.fixture
    def executor(self, tmp_path: Path) -> Executor:
        return Provider(config=LocalConfig(root=str(tmp_path))).serverless()
