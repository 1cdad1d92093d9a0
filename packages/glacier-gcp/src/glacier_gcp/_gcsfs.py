"""gcsfs's filesystem, except that a connection nothing answers fails at once.

gcsfs retries every request up to six times with exponential backoff, a refused
connection included: an endpoint that is down (an emulator that is not running, a
wrong ``endpoint_url``) takes about 35 s to report, as aiohttp's own error. Here a
failure to connect (refused, no such host) leaves gcsfs's retry loop at once as
:class:`EndpointUnreachable`, which :class:`glacier_gcp.storage.GcsStorage` reports as
:class:`~glacier.errors.StorageUnreachableError`; every other failure keeps gcsfs's
retries. Imported only where gcsfs is installed.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from gcsfs.core import GCSFileSystem
from gcsfs.retry import retry_request

__all__ = ["EndpointUnreachable", "FastFailGCSFileSystem"]

#: gcsfs's request, without the retry decorator it is defined with.
_request_once = GCSFileSystem._request.__wrapped__


class EndpointUnreachable(ConnectionError):
    """No connection could be made to the storage endpoint (not one gcsfs retries)."""


class FastFailGCSFileSystem(GCSFileSystem):  # type: ignore[misc]
    """:class:`gcsfs.core.GCSFileSystem` whose requests give up at once when they cannot connect."""

    @retry_request(retries=GCSFileSystem.retries)  # type: ignore[misc]
    async def _request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await _request_once(self, method, path, *args, **kwargs)
        except aiohttp.ClientConnectorError as exc:
            raise EndpointUnreachable(str(exc)) from exc
