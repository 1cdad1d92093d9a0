"""glacier-local's fixtures for the contract suites: one class, and a variant per store and executor.

glacier-local deploys nothing, so it has no ``generated_dir``; its "handler" is the
worker that ``provider.serverless()`` and ``timeout=`` start, ``python -m glacier.run.worker``,
which runs whatever task the payload names (``handler_pins_task = False``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from glacier import Bucket, Provider
from glacier.config import LocalConfig, ProcessConfig
from glacier.plugins.executor import Executor
from glacier.testing import ProviderFixtures


class LocalFixtures(ProviderFixtures):
    """``file://`` buckets under a fresh directory, the in-process executor, the worker as handler."""

    plugin = "local"
    handler_pins_task = False

    @pytest.fixture
    def make_bucket(self, tmp_path: Path) -> Callable[[str], Bucket]:
        provider = Provider(config=LocalConfig(root=str(tmp_path)))
        return lambda path: provider.bucket(bucket="contract", path=path)

    @pytest.fixture
    def executor(self, tmp_path: Path) -> Executor:
        return Provider(config=LocalConfig(root=str(tmp_path))).local()

    @pytest.fixture
    def configs(self, tmp_path: Path) -> list[Any]:
        return [LocalConfig(root=str(tmp_path)), LocalConfig(root="memory://"), ProcessConfig(), ProcessConfig(timeout=2.5)]

    @pytest.fixture
    def handler(self) -> Callable[[Any, str], Any]:
        def call(payload: Any, task: str) -> Any:
            env = {**os.environ, "GLACIER_STEP_PROCESS": "1", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            proc = subprocess.run(
                [sys.executable, "-m", "glacier.run.worker"], input=json.dumps(payload), capture_output=True, text=True, env=env, timeout=120
            )
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout.strip().splitlines()[-1])

        return call


class MemoryFixtures(LocalFixtures):
    """``memory://`` buckets, in a folder of their own per test."""

    @pytest.fixture
    def make_bucket(self, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Bucket]]:
        provider = Provider(config=LocalConfig(root="memory://"))
        folder = f"contract-{abs(hash(request.node.nodeid))}"
        yield lambda path: provider.bucket(bucket=folder, path=path)
        fs = Bucket.from_uri(f"memory://{folder}/x").storage.fs
        if fs.exists(f"/{folder}"):
            fs.rm(f"/{folder}", recursive=True)


class WorkerFixtures(LocalFixtures):
    """The worker executor: ``provider.serverless()``, one process per step."""

    @pytest.fixture
    def executor(self, tmp_path: Path) -> Executor:
        return Provider(config=LocalConfig(root=str(tmp_path))).serverless()
