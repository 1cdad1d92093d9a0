"""Tokens for the identity stand-ins: JWTs that look like a cloud's, signed with a test key; and how the stand-ins serve.

The stand-ins of Google's metadata server (:mod:`glacier_gcp.testing.metadata_server`)
and Azure's managed identity endpoint (:mod:`glacier_azure.testing.identity_endpoint`)
issue these. Nothing here verifies them: Glacier never does (the cloud the token is
presented to does), and moto's STS accepts any web identity token.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["make_jwt", "serve"]

#: The key the stand-ins sign with (HS256): a test value, not a secret.
TEST_KEY = b"glacier-identity-stand-in"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, Any], *, lifetime: float = 3600.0, key: bytes = TEST_KEY) -> str:
    """A compact JWT (HS256) of ``claims``, with ``iat`` now and ``exp`` ``lifetime`` seconds later unless given.

    Examples
    --------
    >>> from glacier.plugins.identity import jwt_claims
    >>> token = make_jwt({"sub": "1234", "iat": 1000, "exp": 4600})
    >>> jwt_claims(token)["sub"], token.count(".")
    ('1234', 2)
    """
    now = int(time.time())
    body = {"iat": now, "exp": now + int(lifetime), **claims}
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(key, f"{head}.{payload}".encode(), hashlib.sha256).digest())
    return f"{head}.{payload}.{signature}"


@contextlib.contextmanager
def serve(handler: type[BaseHTTPRequestHandler], name: str) -> Iterator[int]:
    """Serve ``handler`` on a free port of 127.0.0.1, in a daemon thread called ``name``, for the ``with`` block.

    Yields the port; the server is shut down and its socket closed when the block ends.

    Examples
    --------
    >>> import urllib.request
    >>> class Hello(BaseHTTPRequestHandler):
    ...     def do_GET(self):
    ...         self.send_response(200)
    ...         self.end_headers()
    ...         self.wfile.write(b"hello")
    ...     def log_message(self, format, *args):
    ...         pass
    >>> with serve(Hello, "hello-stand-in") as port:
    ...     urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()
    b'hello'
    """
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
