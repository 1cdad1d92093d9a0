"""A local AWS Lambda service for tests: the Invoke API that boto3 calls, plus one Lambda
Runtime API per function that the real ``awslambdaric`` client polls, all on 127.0.0.1.

Functions are created one by one (:meth:`LambdaService.deploy`) or, as ``terraform apply``
would, from a generated root module (:meth:`LambdaService.deploy_terraform`).

A function runs with its code alone, as in Lambda: the runtime process is ``python -S``
(no site-packages of this machine) with ``PYTHONPATH`` = the function's code, then a folder
holding only what Lambda's Python runtime provides (:func:`runtime_client_dir`:
``awslambdaric`` and the AWS SDK), and an environment built from nothing but the Lambda
runtime variables, the function's own variables and what the caller passes (endpoints,
credentials). A dependency missing from an artifact is an import error here, as there."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

_HOST = "127.0.0.1"
_ACCOUNT = "123456789012"
_INIT_TIMEOUT = 10.0  # Lambda's init phase limit, granted on top of the function timeout
_MAX_REQUEST = 6 * 1024 * 1024  # the synchronous payload limits real Lambda enforces
_MAX_RESPONSE = 6291556
_REFERENCE = re.compile(r"^\$\{([A-Za-z0-9_]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\}$")
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
_RUNTIME_PATH = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
#: What Lambda's Python runtime has besides the stdlib: its runtime client and the AWS SDK
#: (with their dependencies, found from what is installed here).
RUNTIME_PROVIDES = ("awslambdaric", "boto3")
# What a Lambda sandbox's environment holds before the function's own variables.
_BASE_ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC"}


def _closure(names: tuple[str, ...]) -> list[str]:
    """``name==version`` of ``names`` and everything they require, as installed here."""
    seen, todo, pins = set(), list(names), []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        pins.append(f"{name}=={importlib.metadata.version(name)}")
        for req in importlib.metadata.requires(name) or []:
            if "extra ==" not in req:
                todo.append(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-"))
    return sorted(pins)


def runtime_client_dir(cache_dir: str | Path | None = None) -> Path:
    """A folder holding only what Lambda's Python runtime provides, installed once and cached.

    ``awslambdaric``, ``boto3`` and their dependencies (``botocore``, ``s3transfer``,
    ``jmespath``, ``python-dateutil``, ``urllib3``, ``six``, ...), at the versions installed
    here, put by ``pip install --target`` under ``GLACIER_CACHE_DIR/lambda-runtime/`` in a
    folder named by those versions and this interpreter's.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Glacier's cache folder; :func:`glacier.infra.artifact.cache_root` by default.

    Returns
    -------
    Path
        The folder, to put on a runtime's ``PYTHONPATH`` after the function's code.
    """
    from glacier.infra.artifact import cache_root

    pins = _closure(RUNTIME_PROVIDES)
    key_data = {"pins": pins, "python": sys.version_info[:2], "platform": sys.platform}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    root = root / "lambda-runtime"
    final = root / key
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds it installed
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}."))
        try:
            command = [sys.executable, "-m", "pip", "install", "--target", str(tmp / "site"), "--no-deps",
                       "--only-binary=:all:", "--no-compile", "--no-input", "--disable-pip-version-check", *pins]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                msg = f"pip could not install Lambda's runtime client ({' '.join(pins)}):\n{done.stdout}{done.stderr}"
                raise RuntimeError(msg)
            (tmp / "site").rename(final)  # atomic: the cache holds whole folders only
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


@dataclass
class _Result:
    function_error: str | None
    body: bytes
    content_type: str = "application/json"


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline: float | None = None  # time.monotonic() value, set when the runtime takes it
    result: _Result | None = None


def _error(error_type: str, message: str) -> _Result:
    body = {"errorType": error_type, "errorMessage": message}
    return _Result("Unhandled", json.dumps(body).encode())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # request lines would drown test output

    def _body(self) -> bytes:
        # boto3 and awslambdaric both send Content-Length (checked), never chunked bodies.
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    owner: Any  # the _Function or LambdaService that the handlers serve

    def __init__(self, handler: type[_Handler], owner: Any) -> None:
        super().__init__((_HOST, 0), handler)
        self.owner = owner
        threading.Thread(target=self.serve_forever, daemon=True, name=handler.__name__).start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A runtime killed mid-request (timeout, stop) breaks its pipe; that is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Function:
    """One deployed function: its runtime API server, runtime process and invocation state."""

    def __init__(self, name: str, code_dir: Path, handler: str, env: dict[str, str],
                 timeout: float, python: str, log_path: Path, arn: str) -> None:
        self.name, self.code_dir, self.handler, self.env = name, code_dir, handler, env
        self.timeout, self.python, self.log_path, self.arn = timeout, python, log_path, arn
        self.cond = threading.Condition()
        self.serial = threading.Lock()  # Lambda gives a sandbox one event at a time
        self.pending: _Invocation | None = None
        self.current: _Invocation | None = None
        # generation is bumped per process, so /next waits of dead processes give up.
        self.generation, self.received, self.closed = 0, 0, False
        self.init_error: bytes | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.server: _Server | None = None

    def _ensure_runtime(self) -> subprocess.Popen[bytes]:
        self.server = self.server or _Server(_RuntimeHandler, self)
        if self.proc is None or self.proc.poll() is not None:
            self.generation += 1
            self.init_error = None
            self.cond.notify_all()
            env = dict(self.env, AWS_LAMBDA_RUNTIME_API=f"{_HOST}:{self.server.server_port}")
            self.log = self.log or open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
            # -S: none of this machine's site-packages; only PYTHONPATH (code, runtime client).
            self.proc = subprocess.Popen(
                [self.python, "-S", "-m", "awslambdaric", self.handler], cwd=self.code_dir, env=env,
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                start_new_session=True)  # own process group: killing it takes its children too
        return self.proc

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def invoke(self, payload: bytes) -> _Result:
        """Run one event through the runtime process and wait for its outcome."""
        with self.serial, self.cond:
            if self.closed:
                return _error("Runtime.Unavailable", "The Lambda service is stopped")
            proc = self._ensure_runtime()
            inv = self.pending = _Invocation(str(uuid.uuid4()), payload)
            self.cond.notify_all()
            init_limit = time.monotonic() + self.timeout + _INIT_TIMEOUT
            try:
                while inv.result is None:
                    if self.closed:
                        return _error("Runtime.Unavailable", "The Lambda service is stopped")
                    remaining = (inv.deadline or init_limit) - time.monotonic()
                    if remaining <= 0:
                        self._kill()
                        return _error("Sandbox.Timedout", f"RequestId: {inv.request_id} Error: "
                                      f"Task timed out after {self.timeout:.2f} seconds")
                    if (code := proc.poll()) is not None:
                        if self.init_error is not None:  # posted before the runtime exited
                            return _Result("Unhandled", self.init_error)
                        why = f"signal: {-code}" if code < 0 else f"exit status {code}"
                        return _error("Runtime.ExitError", f"RequestId: {inv.request_id} Error: "
                                      f"Runtime exited with error: {why}")
                    self.cond.wait(min(remaining, 0.05))  # also polls for the process exiting
                if len(inv.result.body) > _MAX_RESPONSE:
                    return _error("Function.ResponseSizeTooLarge", "Response payload size "
                                  f"exceeded maximum allowed payload size ({_MAX_RESPONSE} bytes).")
                return inv.result
            finally:
                self.pending = self.current = None

    def next_event(self) -> _Invocation | None:
        """Block until an event is queued for the caller's process generation; hand it over."""
        with self.cond:
            generation = self.generation
            while self.pending is None and not self.closed and self.generation == generation:
                self.cond.wait()
            if self.pending is None or self.closed or self.generation != generation:
                return None
            inv, self.pending, self.current = self.pending, None, self.pending
            inv.deadline = time.monotonic() + self.timeout
            self.received += 1
            return inv

    def post_result(self, request_id: str, result: _Result) -> bool:
        """Record the runtime's answer to the in-flight event; False if it is not in flight."""
        with self.cond:
            inv = self.current
            if inv is None or inv.request_id != request_id or inv.result is not None:
                return False
            inv.result = result
            self.cond.notify_all()
            return True

    def close(self) -> None:
        """Kill the runtime process and stop serving its runtime API."""
        with self.cond:
            self.closed = True
            self._kill()
            self.cond.notify_all()
        if self.server is not None:
            self.server.close()
        if self.log is not None:
            self.log.close()


class _RuntimeHandler(_Handler):
    """The Lambda Runtime API, as awslambdaric's native client calls it."""

    def do_GET(self) -> None:  # noqa: N802
        fn: _Function = self.server.owner
        if urlsplit(self.path).path != "/2018-06-01/runtime/invocation/next":
            return self._send(404, b'{"errorType":"NotFound"}')
        inv = fn.next_event()
        if inv is None:  # service stopping, or the asking process was replaced
            return self._send(410, b'{"errorType":"Runtime.Gone"}')
        # Both clocks are read at one moment, so the header agrees with the local deadline.
        deadline_ms = int((time.time() + (inv.deadline or 0) - time.monotonic()) * 1000)
        trace = f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        headers = {"Lambda-Runtime-Aws-Request-Id": inv.request_id,
                   "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                   "Lambda-Runtime-Invoked-Function-Arn": fn.arn,
                   "Lambda-Runtime-Trace-Id": trace}
        self._send(200, inv.payload, headers)

    def do_POST(self) -> None:  # noqa: N802
        fn: _Function = self.server.owner
        body, path = self._body(), urlsplit(self.path).path
        if path == "/2018-06-01/runtime/init/error":
            with fn.cond:
                fn.init_error = body
            return self._send(202, b'{"status":"OK"}')
        if (match := _RUNTIME_PATH.match(path)) is None:
            return self._send(404, b'{"errorType":"NotFound"}')
        request_id, kind = match.groups()
        result = (_Result(None, body, self.headers.get("Content-Type", "application/json"))
                  if kind == "response" else _Result("Unhandled", body))
        if fn.post_result(request_id, result):
            return self._send(202, b'{"status":"OK"}')
        self._send(400, b'{"errorType":"InvalidRequestID"}')  # late answer to a finished event


class _InvokeHandler(_Handler):
    """The Lambda Invoke API (``POST /2015-03-31/functions/{name}/invocations``)."""

    def do_POST(self) -> None:  # noqa: N802
        service: LambdaService = self.server.owner
        body, path = self._body(), urlsplit(self.path).path
        if (match := _INVOKE_PATH.match(path)) is None:
            return self._fail(404, "UnknownOperationException", f"Unknown operation {path}")
        # Accept a name, name:qualifier, a partial ARN (acct:function:name) or a full ARN.
        parts = unquote(match.group(1)).split(":")
        name = parts[6] if parts[0] == "arn" and len(parts) > 6 else (
            parts[2] if len(parts) > 2 and parts[1] == "function" else parts[0])
        fn = service._functions.get(name)
        if fn is None:
            arn = f"arn:aws:lambda:{service.region}:{_ACCOUNT}:function:{name}"
            return self._fail(404, "ResourceNotFoundException", f"Function not found: {arn}")
        if len(body) > _MAX_REQUEST:
            return self._fail(413, "RequestTooLargeException", "Request must be smaller than "
                              f"{_MAX_REQUEST} bytes for the InvokeFunction operation")
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        request_id = {"x-amzn-RequestId": str(uuid.uuid4())}
        if kind == "Event":
            threading.Thread(target=fn.invoke, args=(body,), daemon=True).start()
            return self._send(202, headers=request_id)
        if kind != "RequestResponse":
            return self._fail(400, "InvalidParameterValueException", f"Unsupported type {kind}")
        result = fn.invoke(body)
        headers = {**request_id, "Content-Type": result.content_type,
                   "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        self._send(200, result.body, headers)

    def _fail(self, status: int, error_type: str, message: str) -> None:
        # botocore's rest-json parser takes the code from x-amzn-ErrorType, the text from Message.
        self._send(status, json.dumps({"Type": "User", "Message": message}).encode(),
                   {"x-amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())})


class LambdaService:
    """Serve the AWS Lambda Invoke API on 127.0.0.1 and run each deployed function's handler
    in the real `awslambdaric` runtime client (one subprocess per function) through a Lambda
    Runtime API endpoint that this class also serves.

    Parameters
    ----------
    region : str
        Region used in ARNs and given to functions as ``AWS_REGION``.
    runtime_dir : str or Path, optional
        What the runtime provides besides the function's code; :func:`runtime_client_dir`
        (installed on first use) by default.
    """

    def __init__(self, region: str = "us-east-1", *, runtime_dir: str | Path | None = None) -> None:
        self.region = region
        self._runtime_dir = Path(runtime_dir) if runtime_dir is not None else None
        self._functions: dict[str, _Function] = {}
        self._server: _Server | None = None
        self._log_dir: Path | None = None  # runtime logs; removed by stop()
        self._lock = threading.Lock()
        #: Function name -> the environment variables of its ``main.tf`` block that
        #: :meth:`deploy_terraform` left out because Terraform fills them from other blocks.
        self.left_out: dict[str, list[str]] = {}

    def start(self) -> LambdaService:
        """Serve the Invoke API on a free port of 127.0.0.1; return self."""
        if self._server is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix="glacier-lambda-"))
            self._server = _Server(_InvokeHandler, self)
        return self

    def stop(self) -> None:
        """Kill every runtime process (with its process group) and close all servers."""
        with self._lock:
            functions, self._functions = list(self._functions.values()), {}
        for fn in functions:
            fn.close()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def __enter__(self) -> LambdaService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """The Invoke API address, for ``boto3.client("lambda", endpoint_url=...)``."""
        if self._server is None:
            raise RuntimeError("LambdaService is not started")
        return f"http://{_HOST}:{self._server.server_port}"

    def deploy(self, name: str, code_dir: str | Path, handler: str, *,
               environment: dict[str, str] | None = None, timeout: float = 30.0,
               memory: int = 128, python: str = sys.executable) -> None:
        """Make a handler invocable as ``name``; its runtime process starts at the first invoke.

        Parameters
        ----------
        name, handler : str
            Function name (redeploying replaces the old one) and ``module.function``.
        code_dir : str or Path
            Task root: working directory and first ``PYTHONPATH`` entry of the runtime, whose
            only other entry is the runtime client's folder.
        environment : dict, optional
            The function's environment variables (endpoints, credentials), applied last;
            nothing of this process's environment is passed otherwise.
        timeout, memory : float, int
            Seconds before ``Sandbox.Timedout``; MB reported to the context (not enforced).
        python : str
            Interpreter that runs ``-S -m awslambdaric`` (its stdlib only: no site-packages).
        """
        if self._log_dir is None:
            raise RuntimeError("LambdaService is not started")
        code_dir = Path(code_dir).resolve()
        if not code_dir.is_dir():
            raise FileNotFoundError(f"code_dir {code_dir} is not a directory")
        if self._runtime_dir is None:
            self._runtime_dir = runtime_client_dir()
        # Nothing inherited from this process: a test's settings reach a function only when passed.
        env = dict(_BASE_ENVIRONMENT)
        env.update({
            "PYTHONPATH": os.pathsep.join([str(code_dir), str(self._runtime_dir)]),
            "PYTHONUNBUFFERED": "1", "_HANDLER": handler, "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(self._runtime_dir),
            "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
        })
        env.update(environment or {})
        fn = _Function(name, code_dir, handler, env, timeout, python, self._log_dir / f"{name}.log",
                       f"arn:aws:lambda:{self.region}:{_ACCOUNT}:function:{name}")
        with self._lock:
            old, self._functions[name] = self._functions.get(name), fn
        if old is not None:
            old.close()

    def deploy_terraform(self, directory: str | Path, *, environment: dict[str, str] | None = None,
                         python: str = sys.executable,
                         credentials: dict[str, dict[str, str]] | None = None) -> list[str]:
        """Create every ``aws_lambda_function`` of the root module in ``directory``, as ``terraform apply`` would.

        Each function gets its name, handler, timeout, memory and literal environment
        variables from ``main.tf``, and runs the zip its ``s3_key`` points at (the ``source``
        of that ``aws_s3_object``), unpacked once. Variables Terraform would fill from other
        blocks (a federated identity's role or audience) are left out and listed in
        :attr:`left_out`; ``environment`` stands in for them.

        Parameters
        ----------
        directory : str or Path
            Where ``generate`` wrote ``main.tf`` and ``artifacts/``.
        environment : dict, optional
            Extra environment variables for every function (credentials), applied last.
        python : str
            Interpreter that runs ``-m awslambdaric``.
        credentials : dict, optional
            Function name -> the credentials of its own role (applied after ``environment``),
            e.g. from :func:`glacier_aws.testing.roles.assume_function_roles`.

        Returns
        -------
        list of str
            The names of the functions created, sorted.
        """
        import hcl2
        from hcl2.utils import SerializationOptions

        from glacier.testing.terraform import split_settings

        if self._log_dir is None:
            raise RuntimeError("LambdaService is not started")
        directory = Path(directory).resolve()
        with open(directory / "main.tf", encoding="utf-8") as f:
            doc = hcl2.load(f, serialization_options=SerializationOptions(strip_string_quotes=True, with_comments=False))
        resources: dict[str, dict[str, Any]] = {}
        for block in doc.get("resource", []):
            for kind, named in block.items():
                resources.setdefault(kind, {}).update(named)
        created = []
        for ident, body in sorted(resources.get("aws_lambda_function", {}).items()):
            code = self._unpack(self._artifact(directory, ident, body, resources))
            raw: dict[str, Any] = {}
            for env_block in body.get("environment", []):
                raw.update(env_block.get("variables", {}))
            variables, self.left_out[str(body["function_name"])] = split_settings(raw)
            self.deploy(str(body["function_name"]), code, str(body["handler"]),
                        environment={**variables, **(environment or {}),
                                     **(credentials or {}).get(str(body["function_name"]), {})},
                        timeout=float(body.get("timeout", 3)), memory=int(body.get("memory_size", 128)),
                        python=python)
            created.append(str(body["function_name"]))
        return sorted(created)

    @staticmethod
    def _artifact(directory: Path, ident: str, body: dict[str, Any], resources: dict[str, dict[str, Any]]) -> Path:
        """The local zip behind a function's ``s3_key`` (or ``filename``)."""
        if "filename" in body:
            return directory / str(body["filename"]).replace("${path.module}", str(directory))
        match = _REFERENCE.match(str(body.get("s3_key", "")))
        if match is None or match.group(1) != "aws_s3_object":
            raise ValueError(f"aws_lambda_function.{ident}: s3_key must reference an aws_s3_object, got {body.get('s3_key')!r}")
        obj = resources.get("aws_s3_object", {}).get(match.group(2))
        if obj is None or "source" not in obj:
            raise ValueError(f"aws_lambda_function.{ident}: no aws_s3_object.{match.group(2)} with a source")
        return Path(str(obj["source"]).replace("${path.module}", str(directory)))

    def _unpack(self, artifact: Path) -> Path:
        assert self._log_dir is not None
        with self._lock:
            code = self._log_dir / "code" / f"{abs(hash(str(artifact)))}-{artifact.stem}"
            if not code.exists():
                with zipfile.ZipFile(artifact) as archive:
                    archive.extractall(code)
        return code

    def invocations(self, name: str) -> int:
        """Return how many events the function's runtime has taken so far."""
        return self._functions[name].received

    def log_path(self, name: str) -> Path:
        """Return the file that holds the function's runtime stdout and stderr."""
        return self._functions[name].log_path
