"""Azurite, Azure Storage's emulator (npm ``azurite``), on 127.0.0.1 for tests and the example.

:class:`Azurite` finds ``azurite-blob`` and ``azurite-queue`` on ``PATH``, or installs
npm's ``azurite@3`` once into ``$GLACIER_CACHE_DIR/node`` (Node.js and npm must be
installed), starts both in memory on free ports, waits until they answer, and stops
them by their process ids::

    with Azurite() as azurite:
        config = azurite.config()  # AzureConfig(storage_account="devstoreaccount1", endpoints=...)
        azurite.create_container("data-lake")
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from glacier_azure.config import AzureConfig

__all__ = ["Azurite", "ACCOUNT", "ACCOUNT_KEY", "azurite_binaries"]

#: Azurite's development account and its well-known key, published in Azure's documentation.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_FLAGS = ("--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--loose")


def azurite_binaries() -> tuple[Path, Path]:
    """``(azurite-blob, azurite-queue)``: from ``PATH``, else npm's ``azurite@3`` installed once under Glacier's cache."""
    found = [shutil.which("azurite-blob"), shutil.which("azurite-queue")]
    if all(found):
        return Path(found[0] or ""), Path(found[1] or "")
    from glacier.infra.artifact import cache_root

    prefix = cache_root() / "node"
    bin_dir = prefix / "node_modules" / ".bin"
    blob, queue = bin_dir / "azurite-blob", bin_dir / "azurite-queue"
    if blob.exists() and queue.exists():
        return blob, queue
    npm = shutil.which("npm")
    if npm is None:
        msg = "Azurite is not on PATH and npm is not installed: install Node.js and npm (e.g. apt-get install nodejs npm), or `npm install -g azurite`"
        raise RuntimeError(msg)
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions install once
        if not (blob.exists() and queue.exists()):
            # npm's own cache goes beside the install too, not into ~/.npm.
            env = {**os.environ, "npm_config_cache": str(prefix / ".npm-cache"), "npm_config_update_notifier": "false"}
            done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), "azurite@3"],
                                  capture_output=True, text=True, timeout=600, check=False, env=env)  # fmt: skip
            if done.returncode or not blob.exists():
                raise RuntimeError(f"npm install azurite@3 failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return blob, queue


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    """Azurite's Blob and Queue services in memory on 127.0.0.1; a context manager.

    Attributes
    ----------
    blob_endpoint, queue_endpoint
        ``http://127.0.0.1:PORT/devstoreaccount1`` of each service, once started.
    """

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir
        self.blob_endpoint = ""
        self.queue_endpoint = ""
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def __enter__(self) -> Azurite:
        blob, queue = azurite_binaries()
        try:
            for tries in range(3):  # a port chosen free may be taken before Azurite binds it
                self.blob_endpoint = self._start(blob, "blob")
                self.queue_endpoint = self._start(queue, "queue")
                if self._wait():
                    return self
                self.stop()
            raise RuntimeError(f"Azurite did not answer on {self.blob_endpoint} and {self.queue_endpoint}")
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _start(self, binary: Path, service: str) -> str:
        port = _free_port()
        log: IO[bytes] = open(self.log_dir / f"azurite-{service}.log", "ab") if self.log_dir else open(os.devnull, "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        command = [str(binary), f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port), *_FLAGS]
        self._procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        return f"http://127.0.0.1:{port}/{ACCOUNT}"

    def _wait(self, seconds: float = 30) -> bool:
        deadline = time.monotonic() + seconds
        pending = [self.blob_endpoint, self.queue_endpoint]
        while pending and time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._procs):
                return False
            try:
                urllib.request.urlopen(f"{pending[0]}?comp=list", timeout=1).close()
                pending.pop(0)
            except urllib.error.HTTPError:  # answered (403 without a signature): it is up
                pending.pop(0)
            except OSError:
                time.sleep(0.05)
        return not pending

    def stop(self) -> None:
        """Stop both services (by process id) and close their logs."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in self._logs:
            log.close()
        self._procs, self._logs = [], []

    @property
    def connection_string(self) -> str:
        """The connection string of Azurite's account (both endpoints, the well-known key)."""
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint}")  # fmt: skip

    def config(self, **fields: Any) -> AzureConfig:
        """An ``AzureConfig`` for Azurite's account and endpoints (``fields`` are AzureConfig's others)."""
        return AzureConfig(storage_account=ACCOUNT, endpoint_url=self.blob_endpoint, service_endpoints={"queue": self.queue_endpoint}, **fields)

    def environment(self) -> dict[str, str]:
        """The variables through which Glacier's clients find Azurite's key: ``AZURE_STORAGE_KEY``."""
        return {"AZURE_STORAGE_KEY": ACCOUNT_KEY}

    def create_container(self, name: str) -> None:
        """Create a blob container (quiet when it exists)."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        with BlobServiceClient.from_connection_string(self.connection_string) as client, contextlib.suppress(ResourceExistsError):
            client.create_container(name)

    def create_queue(self, name: str) -> None:
        """Create a queue (quiet when it exists)."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueServiceClient

        with QueueServiceClient.from_connection_string(self.connection_string) as client, contextlib.suppress(ResourceExistsError):
            client.create_queue(name)
