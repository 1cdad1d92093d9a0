"""A small stand-in for the Azure Functions host, for tests: queue triggers and blob outputs over Azurite.

The real host (Azure Functions Core Tools) cannot be installed here: its npm package
downloads a .NET binary when it installs. :class:`FunctionsHost` does, for the queue
trigger and the blob output binding, what that host does:

- each deployed app runs in a **worker process of its own** that sees only the
  unzipped artifact: ``python -S`` with ``PYTHONPATH`` = the app's root and its
  ``.python_packages/lib/site-packages``, an environment of the app's settings only,
  and the app's ``function_app.py`` imported and indexed as the v2 model's worker does
  (the module's ``FunctionApp``, its functions and their bindings);
- the host dequeues the app's queue (name from the binding, ``%SETTING%`` resolved
  from the app settings), decodes the message as ``host.json``'s
  ``messageEncoding`` says, and calls the function with an ``azure.functions``
  ``QueueMessage`` built by the library's own converter (id, dequeue count, pop receipt);
- it writes each output binding's value to its blob path (``%SETTING%`` and the JSON
  message's ``{field}`` resolved), and deletes the message;
- a failed invocation (an exception, the worker dying, ``functionTimeout`` passed: the
  worker is then killed and restarted) makes the message visible again, and once it
  was dequeued ``maxDequeueCount`` times the host moves it to ``<queue>-poison``;
- ``functionTimeout`` and ``maxDequeueCount`` come from ``host.json``, overridden by the
  app settings ``AzureFunctionsJobHost__functionTimeout`` and
  ``AzureFunctionsJobHost__extensions__queues__maxDequeueCount``.

It has no HTTP front end, and so no 230 s response limit: what matters for Glacier is
that its steps are queue-triggered, which this host shows end to end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["FunctionsHost", "parse_duration"]

# The worker: index function_app.py as the v2 model's Python worker does, then run
# invocations that arrive as JSON lines on stdin, answering on the host's pipe.
_WORKER = r'''
import json, os, sys, traceback
out = os.fdopen(int(os.environ.pop("GLACIER_TEST_HOST_FD")), "w")
try:
    import azure.functions as func
    from azure.functions import meta
    from azure.functions.blob import BlobConverter
    from azure.functions.queue import QueueMessageInConverter
    import function_app
    apps = [v for v in vars(function_app).values() if isinstance(v, func.FunctionApp)]
    functions = {f.get_function_name(): f for app in apps for f in app.get_functions()}
except BaseException:
    out.write(json.dumps({"ready": False, "error": traceback.format_exc()}) + "\n"); out.flush(); raise SystemExit(1)

class Out(func.Out):
    def __init__(self): self.value = None
    def set(self, val): self.value = val
    def get(self): return self.value

out.write(json.dumps({"ready": True, "paths": sys.path, "functions": {n: [b.get_dict_repr() for b in f.get_bindings()] for n, f in functions.items()}}, default=lambda o: getattr(o, "name", str(o))) + "\n")
out.flush()
for line in sys.stdin:
    call = json.loads(line)
    function = functions[call["function"]]
    args, outs = {}, {}
    for b in function.get_bindings():
        rep = b.get_dict_repr()
        if rep["type"] == "queueTrigger":
            md = {"Id": meta.Datum(call["id"], "string"), "DequeueCount": meta.Datum(call["dequeue_count"], "int"),
                  "PopReceipt": meta.Datum(call["pop_receipt"], "string")}
            args[rep["name"]] = QueueMessageInConverter.decode(meta.Datum(call["body"].encode(), "bytes"), trigger_metadata=md)
        elif getattr(rep["direction"], "name", rep["direction"]) == "OUT":
            outs[rep["name"]] = args[rep["name"]] = Out()
    try:
        function.get_user_function()(**args)
        values = {}
        for name, o in outs.items():
            datum = BlobConverter.encode(o.get(), expected_type=str)
            values[name] = datum.value if isinstance(datum.value, str) else datum.value.decode()
        answer = {"ok": True, "outputs": values}
    except BaseException:
        answer = {"ok": False, "error": traceback.format_exc()}
    out.write(json.dumps(answer) + "\n"); out.flush()
'''


def parse_duration(text: str) -> float:
    """Seconds in a ``host.json`` duration, ``"hh:mm:ss"`` (``"-1"`` for none).

    Examples
    --------
    >>> parse_duration("01:30:05")
    5405.0
    """
    if text.strip() == "-1":
        return float("inf")
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass
class _App:
    name: str
    code: Path
    settings: dict[str, str]
    timeout: float
    max_dequeue_count: int
    encoding: str
    log: IO[bytes]
    invocations: int = 0
    failures: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    reader: int = -1
    functions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None
    stopped: threading.Event = field(default_factory=threading.Event)


class FunctionsHost:
    """Hosts function apps from unzipped artifacts, triggered by Azurite's queues; a context manager.

    Parameters
    ----------
    connection_string
        The storage account the apps' ``connection`` settings stand for (Azurite's:
        an emulator knows no managed identities).
    log_dir
        Where each app's worker writes its output (``<app>.log``).
    """

    def __init__(self, connection_string: str, log_dir: Path) -> None:
        self.connection_string = connection_string
        self.log_dir = log_dir
        self._apps: dict[str, _App] = {}
        self._stop = threading.Event()
        #: App name -> the app settings of its ``main.tf`` block that :meth:`deploy_terraform`
        #: left out because Terraform fills them from other blocks.
        self.left_out: dict[str, list[str]] = {}

    def __enter__(self) -> FunctionsHost:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def deploy(self, name: str, code: Path, settings: Mapping[str, str]) -> None:
        """Start serving the app ``name`` from the unzipped artifact ``code`` with its app ``settings``.

        Deploying a name again replaces the app, as a new deployment does: the old
        worker is stopped first.
        """
        if name in self._apps:
            self._undeploy(self._apps.pop(name))
        host = json.loads((code / "host.json").read_text())
        queues = host.get("extensions", {}).get("queues", {})
        timeout = parse_duration(settings.get("AzureFunctionsJobHost__functionTimeout") or host.get("functionTimeout", "00:30:00"))
        dequeues = int(settings.get("AzureFunctionsJobHost__extensions__queues__maxDequeueCount") or queues.get("maxDequeueCount", 5))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        app = _App(name, code, dict(settings), timeout, dequeues, queues.get("messageEncoding", "base64"), open(self.log_dir / f"{name}.log", "ab"))  # noqa: SIM115
        self._apps[name] = app
        self._start_worker(app)
        app.thread = threading.Thread(target=self._serve, args=(app,), name=f"functions-host-{name}", daemon=True)
        app.thread.start()

    def deploy_terraform(self, generated_dir: Path, environment: Mapping[str, str]) -> list[str]:
        """What ``terraform apply`` does for the functions of a generated ``main.tf``, against Azurite.

        For each ``azurerm_function_app_flex_consumption``: its queues and the results
        container are created, its ``zip_deploy_file`` is unzipped, and it is deployed
        with its literal app settings (settings that Terraform would fill from other
        resources, the identity's client id, are left out and listed in :attr:`left_out`)
        plus ``environment``, which stands in for the identity (Azurite's key). Returns the
        apps' names.
        """
        import zipfile

        import hcl2
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueServiceClient

        from glacier.testing.terraform import blocks, split_settings, unquote

        with open(generated_dir / "main.tf") as fh:
            doc = hcl2.load(fh)
        deployed = []
        queues = QueueServiceClient.from_connection_string(self.connection_string)
        blobs = BlobServiceClient.from_connection_string(self.connection_string)
        for body in blocks(doc, "resource", "azurerm_function_app_flex_consumption").values():
            app = unquote(body)
            settings, self.left_out[app["name"]] = split_settings(body["app_settings"])
            for name in (settings["GLACIER_QUEUE"], f"{settings['GLACIER_QUEUE']}-poison"):
                with contextlib.suppress(ResourceExistsError):
                    queues.create_queue(name)
            with contextlib.suppress(ResourceExistsError):
                blobs.create_container(settings["GLACIER_RESULTS_CONTAINER"])
            zip_path = generated_dir / app["zip_deploy_file"].removeprefix("path.module/").removeprefix("${path.module}/")
            code = self.log_dir / "apps" / app["name"]
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(code)
            self.deploy(app["name"], code, {**settings, **environment})
            deployed.append(app["name"])
        return deployed

    def invocations(self, name: str) -> int:
        """How many times the host has invoked the app's function."""
        return self._apps[name].invocations

    def failures(self, name: str) -> list[str]:
        """Why each failed invocation of the app failed (the host's log lines)."""
        return list(self._apps[name].failures)

    def sys_path(self, name: str) -> list[str]:
        """The worker's ``sys.path``: the artifact's folders and the interpreter's standard library only."""
        return list(self._apps[name].paths)

    def stop(self) -> None:
        """Stop serving, and stop every worker by its process id."""
        self._stop.set()
        for app in self._apps.values():
            self._undeploy(app)
        self._apps.clear()

    def _undeploy(self, app: _App) -> None:
        app.stopped.set()
        if app.thread is not None:
            app.thread.join(timeout=30)
        self._kill(app)
        app.log.close()

    # -- the worker -------------------------------------------------------------------

    def _start_worker(self, app: _App) -> None:
        read, write = os.pipe()
        site = app.code / ".python_packages" / "lib" / "site-packages"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": f"{app.code}{os.pathsep}{site}", "PYTHONNOUSERSITE": "1",
               "FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsScriptRoot": str(app.code), "WEBSITE_SITE_NAME": app.name,
               "TMPDIR": os.environ.get("TMPDIR", "/tmp"), "GLACIER_TEST_HOST_FD": str(write), **app.settings}  # fmt: skip
        app.proc = subprocess.Popen([sys.executable, "-S", "-c", _WORKER], cwd=app.code, env=env, stdin=subprocess.PIPE,
                                    stdout=app.log, stderr=subprocess.STDOUT, pass_fds=(write,), start_new_session=True)  # fmt: skip
        os.close(write)
        app.reader = read
        hello = self._read(app, 120)
        if not hello or not hello.get("ready"):
            self._kill(app)
            raise RuntimeError(f"the worker of {app.name} could not index function_app.py: {hello and hello.get('error')}; see {self.log_dir / (app.name + '.log')}")
        app.functions, app.paths = hello["functions"], hello["paths"]

    def _read(self, app: _App, seconds: float) -> dict[str, Any] | None:
        """One answer from the worker, or ``None`` when it died or ``seconds`` passed."""
        deadline = time.monotonic() + seconds
        chunks = b""
        while not chunks.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or (self._stop.is_set() or app.stopped.is_set()) and seconds != 120:
                return None
            ready, _, _ = select.select([app.reader], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(app.reader, 1 << 16)
                if not chunk:
                    return None  # the worker exited
                chunks += chunk
        answer: dict[str, Any] = json.loads(chunks)
        return answer

    def _kill(self, app: _App) -> None:
        if app.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(app.proc.pid, signal.SIGKILL)
            app.proc.wait()
            if app.proc.stdin:
                with contextlib.suppress(OSError):
                    app.proc.stdin.close()
            app.proc = None
        if app.reader >= 0:
            os.close(app.reader)
            app.reader = -1

    # -- the queue trigger ------------------------------------------------------------------

    def _setting(self, app: _App, text: str, message: dict[str, Any] | None = None) -> str:
        text = re.sub(r"%([^%]+)%", lambda m: app.settings[m.group(1)], text)
        if message is not None:
            text = re.sub(r"\{([^}]+)\}", lambda m: str(message[m.group(1)]), text)
        return text

    def _serve(self, app: _App) -> None:
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueClient

        (function, bindings), = app.functions.items()
        trigger = next(b for b in bindings if b["type"] == "queueTrigger")
        outputs = [b for b in bindings if b["type"] == "blob"]
        queue_name = self._setting(app, trigger["queueName"])
        queue = QueueClient.from_connection_string(self.connection_string, queue_name)
        poison = QueueClient.from_connection_string(self.connection_string, f"{queue_name}-poison")
        with contextlib.suppress(Exception):
            poison.create_queue()
        blobs = BlobServiceClient.from_connection_string(self.connection_string)
        while not (self._stop.is_set() or app.stopped.is_set()):
            try:
                message = next(iter(queue.receive_messages(messages_per_page=1, visibility_timeout=int(min(app.timeout, 86_400)) + 30)), None)
            except Exception:  # noqa: BLE001 - Azurite going away at the end of the session
                self._stop.wait(0.5)
                continue
            if message is None:
                self._stop.wait(0.2)
                continue
            raw = message.content
            body = base64.b64decode(raw).decode() if app.encoding == "base64" else raw
            app.invocations += 1
            failure, values = self._invoke(app, function, message, body)
            if failure is None:
                try:
                    fields = json.loads(body)
                    for binding in outputs:
                        container, _, blob = self._setting(app, binding["path"], fields).partition("/")
                        blobs.get_blob_client(container, blob).upload_blob(values[binding["name"]], overwrite=True)
                except Exception as exc:  # noqa: BLE001 - a binding that cannot be written fails the invocation, as in Azure
                    failure = f"output binding failed: {exc!r}"
            if failure is None:
                queue.delete_message(message)
                continue
            app.failures.append(failure)
            app.log.write(f"[host] Executed 'Functions.{function}' (Failed, Id={message.id}, dequeue count {message.dequeue_count}): {failure}\n".encode())
            app.log.flush()
            if (message.dequeue_count or 1) >= app.max_dequeue_count:
                poison.send_message(raw)  # as it came: the poison queue keeps the message's encoding
                queue.delete_message(message)
            else:
                queue.update_message(message, visibility_timeout=0)

    def _invoke(self, app: _App, function: str, message: Any, body: str) -> tuple[str | None, dict[str, str]]:
        """Call the function once: ``(None, output values)`` on success, else ``(why it failed, {})``."""
        if app.proc is None:
            self._start_worker(app)
        assert app.proc is not None and app.proc.stdin is not None
        call = {"function": function, "id": message.id, "dequeue_count": message.dequeue_count, "pop_receipt": message.pop_receipt, "body": body}
        try:
            app.proc.stdin.write((json.dumps(call) + "\n").encode())
            app.proc.stdin.flush()
        except BrokenPipeError:
            pass
        started = time.monotonic()
        answer = self._read(app, app.timeout)
        if answer is None:
            code = None
            if time.monotonic() - started < app.timeout:  # the pipe closed: the worker exited
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = app.proc.wait(timeout=10)
            self._kill(app)  # restarted for the next message, as the host recycles a timed-out worker
            if code is None:
                return f"Timeout value of {app.timeout:g}s exceeded by function 'Functions.{function}'", {}
            return f"the worker process exited with code {code}", {}
        if not answer["ok"]:
            return str(answer["error"]).strip().splitlines()[-1], {}
        return None, answer["outputs"]
