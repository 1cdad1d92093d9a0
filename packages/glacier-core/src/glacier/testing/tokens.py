"""Tokens for the identity stand-ins: JWTs that look like a cloud's, signed with a test key.

The stand-ins of Google's metadata server (:mod:`glacier_gcp.testing.metadata_server`)
and Azure's managed identity endpoint (:mod:`glacier_azure.testing.identity_endpoint`)
issue these. Nothing here verifies them: Glacier never does (the cloud the token is
presented to does), and moto's STS accepts any web identity token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

__all__ = ["make_jwt"]

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
