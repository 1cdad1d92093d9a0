"""A stand-in for Google's metadata server on 127.0.0.1: a Cloud Function's service account and its ID tokens.

It serves what google-auth asks a Cloud Function's metadata server for an ID token
(:func:`google.oauth2.id_token.fetch_id_token`): the ping at ``/`` (answered with
``Metadata-Flavor: Google``), the service account's info
(``/computeMetadata/v1/instance/service-accounts/default/?recursive=true``) and its
identity endpoint (``.../default/identity?audience=...&format=full``), which returns
a JWT (:func:`glacier.testing.tokens.make_jwt`) with Google's issuer, the audience asked
for, the account's unique id as ``sub`` and its email. Like the real server it refuses
a request without the ``Metadata-Flavor: Google`` header (403).

google-auth reads ``GCE_METADATA_HOST`` and ``GCE_METADATA_IP`` when it is imported,
so point a *new* process at it with :attr:`MetadataServer.environment`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from glacier.testing.tokens import make_jwt, serve

__all__ = ["GOOGLE_ISSUER", "MetadataServer", "metadata_server"]

#: The ``iss`` of Google's ID tokens.
GOOGLE_ISSUER = "https://accounts.google.com"
_ACCOUNT_PATH = "/computeMetadata/v1/instance/service-accounts/default/"


@dataclass
class MetadataServer:
    """A running metadata server stand-in.

    Attributes
    ----------
    host : str
        ``127.0.0.1:PORT``.
    unique_id : str
        The service account's unique id (the tokens' ``sub``).
    email : str
        The service account's email.
    audiences : list of str
        The audience of every ID token issued, in order.
    """

    host: str
    unique_id: str
    email: str
    audiences: list[str] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        """What points google-auth at this server (for a process started after it)."""
        return {"GCE_METADATA_HOST": self.host, "GCE_METADATA_ROOT": self.host, "GCE_METADATA_IP": self.host}


def _handler(server: MetadataServer, lifetime: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read :attr:`MetadataServer.audiences`, not a log."""

        def _send(self, status: int, body: str, content_type: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if self.headers.get("Metadata-Flavor") != "Google":
                self._send(403, "Missing Metadata-Flavor:Google header.")
            elif url.path == "/":
                self._send(200, "ok")
            elif url.path == _ACCOUNT_PATH:
                info = {"aliases": ["default"], "email": server.email, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
                self._send(200, json.dumps(info), "application/json")
            elif url.path == _ACCOUNT_PATH + "email":
                self._send(200, server.email)
            elif url.path == _ACCOUNT_PATH + "identity" and query.get("audience"):
                audience = query["audience"][0]
                server.audiences.append(audience)
                claims = {"iss": GOOGLE_ISSUER, "aud": audience, "azp": server.unique_id, "sub": server.unique_id, "email": server.email, "email_verified": True}
                self._send(200, make_jwt(claims, lifetime=lifetime))
            else:
                self._send(404, f"no such metadata: {url.path}")

    return Handler


@contextlib.contextmanager
def metadata_server(*, unique_id: str = "112233445566778899000", email: str = "step@project.iam.gserviceaccount.com",
                    lifetime: float = 3600.0) -> Iterator[MetadataServer]:
    """Serve the stand-in on a free port of 127.0.0.1 for the ``with`` block (in a thread of this process).

    Parameters
    ----------
    unique_id, email
        The service account the function runs as.
    lifetime
        Seconds between an ID token's ``iat`` and ``exp``.

    Examples
    --------
    >>> import urllib.request
    >>> with metadata_server() as gce:
    ...     url = f"http://{gce.host}/computeMetadata/v1/instance/service-accounts/default/identity?audience=sts.amazonaws.com"
    ...     request = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})
    ...     token = urllib.request.urlopen(request).read().decode()
    >>> token.count("."), gce.audiences
    (2, ['sts.amazonaws.com'])
    """
    state = MetadataServer(host="", unique_id=unique_id, email=email)
    with serve(_handler(state, lifetime), "glacier-metadata-stand-in") as port:
        state.host = f"127.0.0.1:{port}"
        yield state
