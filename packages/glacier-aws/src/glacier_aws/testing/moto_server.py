"""moto's server in a process of its own on 127.0.0.1: S3, IAM, STS (and the rest of AWS) for tests.

One context manager, :func:`moto_server`, starts ``python -m moto.server`` on a free port,
waits until it answers, and stops it by its pid (with its process group). A separate
process rather than moto's in-process ``ThreadedMotoServer``: IAM enforcement is
process-wide in moto, and a server of its own is what a client meets in real use.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MotoServer", "moto_server"]

_HOST = "127.0.0.1"
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class MotoServer:
    """A running moto server.

    Attributes
    ----------
    endpoint : str
        Its address, ``http://127.0.0.1:PORT``: the ``endpoint_url`` of every service.
    pid : int
        The server process (the leader of its own process group).
    log_path : Path
        The file that holds the server's output.
    admin : dict of str to str
        When IAM is enforced, ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` of a user
        allowed everything, for the test's own calls; empty otherwise (any key is accepted).
    """

    endpoint: str
    pid: int
    log_path: Path
    admin: dict[str, str] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: str) -> None:
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).close()


def _wait_until_serving(proc: subprocess.Popen[bytes], endpoint: str, deadline: float) -> bool:
    """True once the server answers; False when the process exited first (its port was taken)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    msg = f"moto's server did not answer on {endpoint} in time"
    raise TimeoutError(msg)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _enforce_iam(endpoint: str, region: str) -> dict[str, str]:
    """Create an administrator, then turn enforcement on for every later request."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name=region, aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL))
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    # moto lets the first N requests through unauthenticated; 0 from now on.
    _post(f"{endpoint}/moto-api/reset-auth", "0")
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@contextlib.contextmanager
def moto_server(*, enforce_iam: bool = False, log_dir: str | Path | None = None, region: str = "us-east-1",
                startup_timeout: float = 60.0) -> Iterator[MotoServer]:
    """Run moto's server on a free port of 127.0.0.1 for the ``with`` block.

    Parameters
    ----------
    enforce_iam : bool
        Check every request against IAM, as AWS does: an administrator is created first
        (its keys are :attr:`MotoServer.admin`), and from then on a request signed by
        unknown keys, or not allowed by its identity's policies, is refused.
    log_dir : str or Path, optional
        Where ``moto.log`` is written; a temporary folder (removed after) by default.
    region : str
        The region of the calls that set up enforcement.
    startup_timeout : float
        Seconds to wait for the server to answer.

    Yields
    ------
    MotoServer
        The endpoint, pid and, when enforcing, the administrator's keys.

    Raises
    ------
    TimeoutError
        When the server does not answer within ``startup_timeout``.
    RuntimeError
        When it exits before serving, three times (each on a port found free).

    Examples
    --------
    >>> import boto3
    >>> with moto_server() as moto:
    ...     s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
    ...                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ...     _ = s3.create_bucket(Bucket="lake")
    ...     [b["Name"] for b in s3.list_buckets()["Buckets"]]
    ['lake']
    """
    with contextlib.ExitStack() as stack:
        folder = Path(log_dir) if log_dir is not None else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="glacier-moto-")))
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / "moto.log"
        log = stack.enter_context(open(log_path, "ab"))
        deadline = time.monotonic() + startup_timeout
        for _ in range(3):
            port = _free_port()
            endpoint = f"http://{_HOST}:{port}"
            proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", _HOST, "-p", str(port)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # own process group: stopped with its children
            stack.callback(_stop, proc)
            if _wait_until_serving(proc, endpoint, deadline):
                break
        else:
            msg = f"moto's server exited before serving, three times; see {log_path}"
            raise RuntimeError(msg)
        admin = _enforce_iam(endpoint, region) if enforce_iam else {}
        yield MotoServer(endpoint=endpoint, pid=proc.pid, log_path=log_path, admin=admin)
