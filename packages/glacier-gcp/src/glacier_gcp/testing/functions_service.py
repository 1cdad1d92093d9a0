"""Cloud Functions on 127.0.0.1: a function's source zip, built and served as Cloud Functions would.

The source zip is unzipped, its ``requirements.txt`` installed with pip into a fresh
venv (``python -m venv``; nothing else goes in, as on Cloud Functions' builder), and
each deployed function is served by Google's ``functions-framework`` from that venv,
one process per function, with the function's environment (``GLACIER_TASK``,
``K_SERVICE``...). The venv is cached under ``GLACIER_CACHE_DIR`` by the digest of the
requirements and the interpreter, so a second session installs nothing.

In front of the functions stands a small HTTP server playing Cloud Run's front end:
``/NAME`` is the URL of the function ``NAME``; a request that outlives the function's
timeout is answered ``504`` and its instance stopped (by its pid), and a function
deployed with ``require_auth=True`` answers ``403`` to a request without the bearer
token :attr:`FunctionsService.token`, as Cloud Run does to a caller without
``roles/run.invoker``; an instance that dies during a request is answered ``503``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from glacier.infra.artifact import cache_root

__all__ = ["FunctionsService", "Function", "function_venv"]

#: Where Google's metadata server would be: a closed port, so nothing in a function reaches Google.
OFFLINE = {"GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_ROOT": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9", "NO_GCE_CHECK": "True"}

_FORBIDDEN = (
    b"<html><head><title>403 Forbidden</title></head><body><h1>Error: Forbidden</h1>"
    b"<h2>Your client does not have permission to get URL from this server.</h2></body></html>"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def function_venv(requirements: Path, python: str = sys.executable) -> Path:
    """A venv with exactly ``requirements`` installed by pip, built once per requirements and interpreter and cached.

    Raises
    ------
    RuntimeError
        When pip cannot install the requirements (its output is in the message).
    """
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256(requirements.read_bytes() + version.encode()).hexdigest()[:24]
    root = cache_root() / "functions-venvs"
    final = root / key
    if (final / "ready").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds the venv built
        if (final / "ready").exists():
            return final
        shutil.rmtree(final, ignore_errors=True)
        # Built in place (a venv's scripts name its path), marked ready only when complete.
        subprocess.run([python, "-m", "venv", str(final)], check=True, capture_output=True)
        done = subprocess.run(
            [str(final / "bin" / "python"), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "-r", str(requirements)],
            capture_output=True, text=True, check=False,
        )
        if done.returncode:
            shutil.rmtree(final, ignore_errors=True)
            msg = f"pip could not install {requirements}:\n{(done.stdout + done.stderr)[-3000:]}"
            raise RuntimeError(msg)
        (final / "ready").write_text("")
    return final


@dataclass
class Function:
    """One deployed function: its name, environment, timeout and serving process."""

    name: str
    environment: dict[str, str]
    timeout: float
    require_auth: bool = False
    source: Path = Path()
    venv: Path = Path()
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class FunctionsService:
    """Serves a Cloud Functions source zip on 127.0.0.1, one functions-framework process per function.

    Examples
    --------
    Not run as a test: the first deploy pip-installs the zip's requirements from the index.

    >>> with FunctionsService() as service:  # doctest: +SKIP
    ...     url = service.deploy("etl-transform", Path("glacier-function-python312.zip"), {"GLACIER_TASK": "etl:transform"}, timeout=60)
    """

    #: The bearer token a ``require_auth`` function accepts.
    token = "glacier-test-invoker"

    def __init__(self, *, python: str = sys.executable) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="glacier-functions-"))
        self.python = python
        self.functions: dict[str, Function] = {}
        self.requests: dict[str, int] = {}
        #: Function name -> the environment variables of its ``main.tf`` block that
        #: :meth:`deploy_terraform` left out because Terraform fills them from other blocks.
        self.left_out: dict[str, list[str]] = {}
        service = self

        class FrontEnd(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                service._serve(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), FrontEnd)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` of the front end."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def deploy(self, name: str, source_zip: Path, environment: dict[str, str], *, timeout: float = 60, require_auth: bool = False) -> str:
        """Deploy the function ``name`` from ``source_zip`` with ``environment`` and return its URL; its process starts at once.

        The zip is unpacked and its requirements installed as Cloud Functions' builder
        would (see :func:`function_venv`); deploying a name again replaces the function.
        """
        digest = hashlib.sha256(Path(source_zip).read_bytes()).hexdigest()[:16]
        source = self.workdir / "sources" / digest
        if not source.exists():
            with zipfile.ZipFile(source_zip) as archive:
                archive.extractall(source)
        if name in self.functions:
            self._kill(self.functions[name])
        function = Function(name, dict(environment), timeout, require_auth, source=source, venv=function_venv(source / "requirements.txt", self.python))
        self.functions[name] = function
        self.requests[name] = 0
        self._start(function)
        return f"{self.endpoint}/{name}"

    def deploy_terraform(self, directory: str | Path, *, environment: dict[str, str] | None = None, require_auth: bool = False) -> dict[str, str]:
        """Deploy every ``google_cloudfunctions2_function`` of the root module in ``directory``, as ``terraform apply`` would.

        Each function gets its name, timeout and literal environment variables from
        ``main.tf``, and is built from the zip its ``storage_source`` object uploads;
        ``environment`` is added to every function's. Variables Terraform would fill from
        other blocks (a federated identity's client id or audience) are left out and listed
        in :attr:`left_out`; ``environment`` stands in for them. Returns each function's URL by name.
        """
        import hcl2

        from glacier.testing.terraform import blocks, split_settings, unquote

        directory = Path(directory).resolve()
        with open(directory / "main.tf", encoding="utf-8") as f:
            doc = hcl2.load(f)
        objects = {f"google_storage_bucket_object.{ident}.name": unquote(body) for ident, body in blocks(doc, "resource", "google_storage_bucket_object").items()}
        urls = {}
        for raw in blocks(doc, "resource", "google_cloudfunctions2_function").values():
            body = unquote(raw)
            service = body["service_config"][0]
            source = objects[body["build_config"][0]["source"][0]["storage_source"][0]["object"]]
            zip_path = directory / str(source["source"]).replace("${path.module}/", "")
            variables, self.left_out[body["name"]] = split_settings(raw["service_config"][0].get("environment_variables") or {})
            urls[body["name"]] = self.deploy(body["name"], zip_path, {**variables, **(environment or {})}, timeout=float(service["timeout_seconds"]), require_auth=require_auth)
        self.wait_ready()
        return urls

    def invocations(self, name: str) -> int:
        """How many requests reached the function ``name`` since it was (last) deployed."""
        return self.requests.get(name, 0)

    def log(self, name: str) -> str:
        """What the function's processes printed."""
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until every running function's process accepts connections (one stopped at a timeout starts on its next request)."""
        for function in self.functions.values():
            if function.process is not None:
                self._wait(function, timeout)

    def _start(self, function: Function) -> None:
        function.port = _free_port()
        env = {
            "PATH": f"{function.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.workdir / "home"),
            "CLOUDSDK_CONFIG": str(self.workdir / "home" / "gcloud"),
            "K_SERVICE": function.name,
            "K_REVISION": f"{function.name}-00001",
            "FUNCTION_TARGET": "handler",
            "PORT": str(function.port),
            "PYTHONUNBUFFERED": "1",
            **OFFLINE,
            **function.environment,
        }
        with open(self.workdir / f"{function.name}.log", "ab") as log:
            function.process = subprocess.Popen(
                [str(function.venv / "bin" / "python"), "-m", "functions_framework", "--source", "main.py", "--target", "handler",
                 "--host", "127.0.0.1", "--port", str(function.port)],
                cwd=function.source, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def _wait(self, function: Function, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if function.process is None or function.process.poll() is not None:
                msg = f"function {function.name} exited before serving:\n{self.log(function.name)[-3000:]}"
                raise RuntimeError(msg)
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", function.port), timeout=1):
                return
            time.sleep(0.05)
        msg = f"function {function.name} did not serve within {timeout}s:\n{self.log(function.name)[-3000:]}"
        raise RuntimeError(msg)

    def _kill(self, function: Function) -> None:
        process = function.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # functions-framework's gunicorn and its worker
            process.wait()
        function.process = None

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        name = request.path.strip("/").split("/")[0].split("?")[0]
        function = self.functions.get(name)
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        if function is None:
            self._answer(request, 404, b"Page not found", "text/html")
            return
        self.requests[name] = self.requests.get(name, 0) + 1
        if function.require_auth and request.headers.get("Authorization") != f"Bearer {self.token}":
            self._answer(request, 403, _FORBIDDEN, "text/html")
            return
        with function.lock:
            if function.process is None:  # stopped at an earlier timeout: a new instance
                self._start(function)
            self._wait(function, 60)
        connection = http.client.HTTPConnection("127.0.0.1", function.port, timeout=function.timeout)
        try:
            connection.request(request.command, "/", body=body, headers={"Content-Type": request.headers.get("Content-Type") or "application/json"})
            response = connection.getresponse()
            self._answer(request, response.status, response.read(), response.getheader("Content-Type") or "text/plain")
        except TimeoutError:
            with function.lock:
                self._kill(function)  # as Cloud Run stops the request; the step writes nothing after
            self._answer(request, 504, b"upstream request timeout", "text/plain")
        except OSError:  # the instance died mid-request (a crash, an out-of-memory kill)
            self._answer(request, 503, b"Service Unavailable: the instance was terminated while handling the request", "text/plain")
        finally:
            connection.close()

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        with contextlib.suppress(OSError):  # the client may have given up
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

    def stop(self) -> None:
        """Stop every function's process by its pid, the front end, and remove the unzipped source."""
        for function in self.functions.values():
            self._kill(function)
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> FunctionsService:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
