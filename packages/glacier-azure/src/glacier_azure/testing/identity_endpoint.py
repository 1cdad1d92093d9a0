"""A stand-in for Azure Functions' managed identity endpoint on 127.0.0.1: tokens of a function app's identity.

App Service (and so Azure Functions) gives an app its identity's tokens at
``IDENTITY_ENDPOINT``, guarded by the secret in ``IDENTITY_HEADER``
(``GET ?api-version=2019-08-01&resource=...&client_id=...`` with header
``X-IDENTITY-HEADER``). This server answers exactly that, as azure-identity's
:class:`~azure.identity.ManagedIdentityCredential` asks it, with a JWT
(:func:`glacier.testing.tokens.make_jwt`) that has Entra's issuer for the tenant, the
resource as ``aud`` and the identity's object id as ``sub``. A request without the
header's value, or for another client id, is refused (401, 400).

The exchange of that token with Entra (a federated credential) is not served here:
azure-identity refuses an authority that is not ``https``, so it cannot be pointed at
a local stand-in.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from glacier.testing.tokens import make_jwt, serve

__all__ = ["IdentityEndpoint", "identity_endpoint"]


@dataclass
class IdentityEndpoint:
    """A running managed identity endpoint stand-in.

    Attributes
    ----------
    endpoint : str
        ``http://127.0.0.1:PORT/msi/token``: the app's ``IDENTITY_ENDPOINT``.
    header : str
        The app's ``IDENTITY_HEADER`` (random per server).
    client_id, principal_id, tenant_id : str
        The user-assigned identity: its client id, its object id (the tokens' ``sub``), its tenant.
    resources : list of str
        The resource of every token issued, in order.
    """

    endpoint: str
    header: str
    client_id: str
    principal_id: str
    tenant_id: str
    resources: list[str] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        """The app settings that point azure-identity at this endpoint, as App Service sets them."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.header, "AZURE_CLIENT_ID": self.client_id}


def _handler(server: IdentityEndpoint, lifetime: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read :attr:`IdentityEndpoint.resources`, not a log."""

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            if url.path != "/msi/token":
                self._send(404, {"error": "not_found"})
            elif self.headers.get("X-IDENTITY-HEADER") != server.header:
                self._send(401, {"error": "unauthorized", "error_description": "X-IDENTITY-HEADER is missing or wrong"})
            elif query.get("api-version") != "2019-08-01" or not query.get("resource"):
                self._send(400, {"error": "invalid_request", "error_description": "api-version=2019-08-01 and resource are required"})
            elif query.get("client_id", server.client_id) != server.client_id:
                self._send(400, {"error": "invalid_request", "error_description": f"no identity with client id {query['client_id']}"})
            else:
                resource = query["resource"]
                server.resources.append(resource)
                claims = {"iss": f"https://sts.windows.net/{server.tenant_id}/", "aud": resource, "sub": server.principal_id,
                          "oid": server.principal_id, "appid": server.client_id, "tid": server.tenant_id}  # fmt: skip
                expires = int(time.time() + lifetime)
                body = {"access_token": make_jwt(claims, lifetime=lifetime), "expires_on": str(expires), "resource": resource,
                        "token_type": "Bearer", "client_id": server.client_id}  # fmt: skip
                self._send(200, body)

    return Handler


@contextlib.contextmanager
def identity_endpoint(*, client_id: str = "11111111-2222-3333-4444-555555555555", principal_id: str = "66666666-7777-8888-9999-000000000000",
                      tenant_id: str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", lifetime: float = 86400.0) -> Iterator[IdentityEndpoint]:  # fmt: skip
    """Serve the stand-in on a free port of 127.0.0.1 for the ``with`` block (in a thread of this process).

    Parameters
    ----------
    client_id, principal_id, tenant_id
        The function app's user-assigned identity.
    lifetime
        Seconds a token is valid (managed identity tokens last about a day).

    Examples
    --------
    >>> import json, urllib.request
    >>> with identity_endpoint() as msi:
    ...     request = urllib.request.Request(f"{msi.endpoint}?api-version=2019-08-01&resource=api://AzureADTokenExchange",
    ...                                      headers={"X-IDENTITY-HEADER": msi.header})
    ...     body = json.load(urllib.request.urlopen(request))
    >>> body["token_type"], msi.resources
    ('Bearer', ['api://AzureADTokenExchange'])
    """
    state = IdentityEndpoint(endpoint="", header=secrets.token_hex(16), client_id=client_id, principal_id=principal_id, tenant_id=tenant_id)
    with serve(_handler(state, lifetime), "glacier-identity-endpoint-stand-in") as port:
        state.endpoint = f"http://127.0.0.1:{port}/msi/token"
        yield state
