"""A light ``gs://`` client for functions: GCS's JSON API over google-auth and requests, no gcsfs.

gcsfs pulls google-cloud-storage-control, grpcio and protobuf: with polars that is
~241 MB unzipped, so a Lambda step that touches ``gs://`` could not carry it under
Lambda's 250 MB. :class:`LightGcsFileSystem` is the fsspec filesystem that
:class:`glacier_gcp.storage.GcsStorage` uses where gcsfs is not installed (inside
another cloud's function). It keeps GcsStorage's guarantees:

- **reads** stay with polars' native ``gs://`` reader (GcsStorage's storage options);
  this client only reads small objects (cache records) by ranged ``GET ...?alt=media``;
- **atomic commit**: a target is written in ONE upload, a resumable upload session fed
  in 256 KiB multiples whose object appears only when its last chunk is accepted (one
  ``uploadType=multipart`` request when it fits one block); a failed write cancels
  its session (:meth:`LightGcsFile.discard`) and the old object stays;
- **fingerprints**: :meth:`LightGcsFileSystem.info` carries the object's ``generation``;
- **listing** for globs (``objects.list`` with ``prefix``, paginated);
- **clear errors**: a missing object is a ``FileNotFoundError`` naming its URI, a
  refusal a ``PermissionError`` naming it, an unreachable endpoint a
  :class:`~glacier.errors.StorageUnreachableError` naming the endpoint.

Credentials are google-auth's Application Default Credentials (which read Workload
Identity Federation configurations too), or none (anonymous) against an emulator.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any, ClassVar
from urllib.parse import quote

import fsspec
from fsspec.spec import AbstractBufferedFile

from glacier.errors import StorageUnreachableError

__all__ = ["LightGcsFileSystem", "LightGcsFile", "GOOGLE_STORAGE", "SCOPE", "CHUNK"]

#: Google's storage endpoint.
GOOGLE_STORAGE = "https://storage.googleapis.com"

#: The OAuth scope the client asks for.
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"

#: A resumable upload's chunks are multiples of this (GCS's rule), except the last.
CHUNK = 256 * 1024


class LightGcsFileSystem(fsspec.AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """fsspec's view of GCS through its JSON API, with google-auth and requests only.

    Parameters
    ----------
    endpoint
        The storage endpoint (an emulator's ``http://127.0.0.1:PORT``), else Google's.
    anonymous
        Send requests without credentials (an emulator); otherwise google-auth's
        Application Default Credentials.
    timeout
        Seconds each request may take to connect and to answer.

    Examples
    --------
    >>> fs = LightGcsFileSystem(endpoint="http://127.0.0.1:4443", anonymous=True)
    >>> fs._strip_protocol("gs://lake/raw/a.parquet"), fs.split_path("lake/raw/a.parquet")
    ('lake/raw/a.parquet', ('lake', 'raw/a.parquet'))
    """

    protocol: ClassVar[tuple[str, ...]] = ("gs", "gcs")
    root_marker = ""
    cachable = False  # each GcsStorage holds its own; no process-wide instance cache

    def __init__(self, endpoint: str | None = None, *, anonymous: bool = False, timeout: float = 60.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint = (endpoint or GOOGLE_STORAGE).rstrip("/")
        self.anonymous = anonymous
        self.timeout = timeout
        self._session: Any = None

    # -- requests -----------------------------------------------------------------------

    @property
    def session(self) -> Any:
        """A ``requests`` session: plain when anonymous, else google-auth's ``AuthorizedSession``."""
        if self._session is None:
            if self.anonymous:
                import requests

                self._session = requests.Session()
            else:
                import google.auth
                from google.auth.transport.requests import AuthorizedSession

                credentials, _ = google.auth.default(scopes=[SCOPE])
                self._session = AuthorizedSession(credentials)
        return self._session

    def _request(self, method: str, url: str, uri: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        import requests

        try:
            response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.ConnectionError as exc:
            hint = f"check that the GCS endpoint {self.endpoint} is running and reachable, or set GcpConfig(endpoint_url=...)"
            raise StorageUnreachableError("", f"cannot reach GCS at {self.endpoint} ({exc})", uri=uri, hint=hint) from exc
        if response.status_code in ok:
            return response
        detail = f"GCS answered {method} {uri} with HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code == 404:
            raise FileNotFoundError(f"{uri} does not exist ({detail})")
        if response.status_code in (401, 403):
            raise PermissionError(f"{detail}\n\nHint: grant this identity access to {uri}")
        if response.status_code == 412:
            raise FileExistsError(f"{uri} changed or exists ({detail})")
        raise OSError(detail)

    def _object_url(self, bucket: str, key: str) -> str:
        return f"{self.endpoint}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}"

    def _upload_url(self, bucket: str) -> str:
        return f"{self.endpoint}/upload/storage/v1/b/{quote(bucket, safe='')}/o"

    # -- paths ----------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        for proto in cls.protocol:
            text = text.removeprefix(f"{proto}://")
        return text.rstrip("/")

    @staticmethod
    def split_path(path: str) -> tuple[str, str]:
        """``"bucket/key"`` -> ``("bucket", "key")``."""
        bucket, _, key = path.strip("/").partition("/")
        return bucket, key

    def unstrip_protocol(self, name: str) -> str:
        """``"bucket/key"`` -> ``"gs://bucket/key"``."""
        return f"gs://{self._strip_protocol(name)}"

    # -- metadata -------------------------------------------------------------------------

    @staticmethod
    def _object_info(bucket: str, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": f"{bucket}/{item['name']}",
            "type": "file",
            "size": int(item.get("size") or 0),
            "generation": item.get("generation"),
            "metageneration": item.get("metageneration"),
            "md5Hash": item.get("md5Hash"),
            "crc32c": item.get("crc32c"),
            "updated": item.get("updated"),
            "contentType": item.get("contentType"),
        }

    def _list(self, bucket: str, prefix: str, delimiter: str | None, uri: str, max_results: int | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        items: list[dict[str, Any]] = []
        prefixes: list[str] = []
        params: dict[str, Any] = {"prefix": prefix}
        if delimiter:
            params["delimiter"] = delimiter
        if max_results:
            params["maxResults"] = max_results
        url = f"{self.endpoint}/storage/v1/b/{quote(bucket, safe='')}/o"
        while True:
            page = self._request("GET", url, uri, params=params).json()
            items += page.get("items", [])
            prefixes += page.get("prefixes", [])
            token = page.get("nextPageToken")
            if not token or max_results:
                return items, prefixes
            params["pageToken"] = token

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """The object's metadata (with its ``generation``), a folder's, or ``FileNotFoundError`` naming the URI."""
        path = self._strip_protocol(path)
        bucket, key = self.split_path(path)
        uri = f"gs://{path}"
        if not key:
            self._request("GET", f"{self.endpoint}/storage/v1/b/{quote(bucket, safe='')}", uri)
            return {"name": bucket, "type": "directory", "size": 0}
        try:
            return self._object_info(bucket, self._request("GET", self._object_url(bucket, key), uri).json())
        except FileNotFoundError:
            pass
        items, prefixes = self._list(bucket, f"{key}/", "/", uri, max_results=1)
        if items or prefixes:
            return {"name": path, "type": "directory", "size": 0}
        raise FileNotFoundError(f"{uri} does not exist")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The objects and folders directly under ``path`` (``FileNotFoundError`` when there are none)."""
        path = self._strip_protocol(path)
        bucket, key = self.split_path(path)
        items, prefixes = self._list(bucket, f"{key}/" if key else "", "/", f"gs://{path}")
        entries = [self._object_info(bucket, item) for item in items]
        entries += [{"name": f"{bucket}/{p.rstrip('/')}", "type": "directory", "size": 0} for p in prefixes]
        if not entries and key:
            found = self.info(path)  # a file is its own listing; nothing raises FileNotFoundError
            entries = [found] if found["type"] == "file" else []
        entries.sort(key=lambda e: e["name"])
        return entries if detail else [e["name"] for e in entries]

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False, detail: bool = False, **kwargs: Any) -> Any:
        """Every object below ``path`` in one flat (paginated) listing; folders too with ``withdirs``."""
        path = self._strip_protocol(path)
        bucket, key = self.split_path(path)
        found: dict[str, dict[str, Any]] = {}
        items, _ = self._list(bucket, f"{key}/" if key else "", None, f"gs://{path}")
        for item in items:
            entry = self._object_info(bucket, item)
            rel = entry["name"][len(path) + 1 :]
            parts = rel.split("/")
            if withdirs:
                for depth in range(1, len(parts)):
                    if maxdepth is None or depth <= maxdepth:
                        name = f"{path}/{'/'.join(parts[:depth])}"
                        found.setdefault(name, {"name": name, "type": "directory", "size": 0})
            if maxdepth is None or len(parts) <= maxdepth:
                found[entry["name"]] = entry
        if not found and key:
            try:
                entry = self.info(path)
            except FileNotFoundError:
                entry = {}
            if entry.get("type") == "file":
                found[path] = entry
        names = sorted(found)
        return {n: found[n] for n in names} if detail else names

    def exists(self, path: str, **kwargs: Any) -> bool:
        """Whether ``path`` names an object or a folder; an unreachable store raises (fsspec's default would say ``False``)."""
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def created(self, path: str) -> Any:
        """The object's last update (GCS objects are immutable: created = updated)."""
        return self.info(path).get("updated")

    modified = created

    # -- changes --------------------------------------------------------------------------

    def rm_file(self, path: str) -> None:
        """Delete one object; ``FileNotFoundError`` naming it when it is missing."""
        path = self._strip_protocol(path)
        bucket, key = self.split_path(path)
        self._request("DELETE", self._object_url(bucket, key), f"gs://{path}", ok=(200, 204))

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete objects (``recursive``: everything below each path too)."""
        paths = path if isinstance(path, list) else [path]
        for one in paths:
            if recursive:
                for name in self.find(one, maxdepth=maxdepth):
                    self.rm_file(name)
                continue
            self.rm_file(one)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing: GCS has no folders."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing: GCS has no folders."""

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Write ``value`` as one object in one upload (``mode="create"``: only if it does not exist)."""
        path = self._strip_protocol(path)
        bucket, key = self.split_path(path)
        self._upload_once(bucket, key, value, f"gs://{path}", create=mode == "create")

    def _upload_once(self, bucket: str, key: str, data: bytes, uri: str, *, create: bool = False) -> None:
        # A multipart upload (metadata and bytes in one request): GCS and fake-gcs-server both
        # honour ifGenerationMatch on it (fake-gcs-server ignores it on media uploads).
        boundary = f"glacier-{uuid.uuid4().hex}"
        meta = json.dumps({"name": key, "contentType": "application/octet-stream"}).encode()
        body = b"".join([
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(), meta,
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(), data,
            f"\r\n--{boundary}--\r\n".encode(),
        ])  # fmt: skip
        params = {"uploadType": "multipart", **({"ifGenerationMatch": "0"} if create else {})}
        headers = {"Content-Type": f"multipart/related; boundary={boundary}"}
        self._request("POST", self._upload_url(bucket), uri, params=params, data=body, headers=headers)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """The object's bytes (``start``..``end``, end exclusive), by one ``GET ...?alt=media``."""
        path = self._strip_protocol(path)
        bucket, key = self.split_path(path)
        headers = {}
        if start is not None or end is not None:
            begin = start or 0
            if end is not None and end <= begin:
                return b""
            headers["Range"] = f"bytes={begin}-{'' if end is None else end - 1}"
        response = self._request("GET", self._object_url(bucket, key), f"gs://{path}", ok=(200, 206), params={"alt": "media"}, headers=headers)
        return bytes(response.content)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True, **kwargs: Any) -> LightGcsFile:
        return LightGcsFile(self, self._strip_protocol(path), mode, block_size=block_size or "default", autocommit=autocommit, **kwargs)


class LightGcsFile(AbstractBufferedFile):  # type: ignore[misc]  # fsspec is untyped
    """One object of :class:`LightGcsFileSystem`, read by ranges or written in one upload.

    A write that fits one block is one ``uploadType=multipart`` request at close; a larger
    one is a resumable upload session: every full 256 KiB multiple is sent as it fills,
    and the object appears only when the last chunk (with the total size) is accepted.
    :meth:`discard` cancels the session, so the object never appears.
    """

    DEFAULT_BLOCK_SIZE = 8 * 2**20
    fs: LightGcsFileSystem
    buffer: io.BytesIO
    offset: int

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self.fs.cat_file(self.path, start, end)

    def _uri(self) -> str:
        return f"gs://{self.path}"

    def _initiate_upload(self) -> None:
        """Nothing yet: a write that fits one block is sent as one simple upload at close."""
        self._session_uri: str | None = getattr(self, "_session_uri", None)

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getvalue()
        bucket, key = self.fs.split_path(self.path)
        session_uri = getattr(self, "_session_uri", None)
        if final and session_uri is None:
            self.fs._upload_once(bucket, key, data, self._uri())
            return True
        if session_uri is None:
            response = self.fs._request(
                "POST", self.fs._upload_url(bucket), self._uri(), params={"uploadType": "resumable", "name": key},
                json={"name": key}, headers={"X-Upload-Content-Type": "application/octet-stream"},
            )  # fmt: skip
            session_uri = self._session_uri = response.headers["Location"]
        sent = len(data) if final else len(data) - len(data) % CHUNK
        start = self.offset
        if final:
            total = start + sent
            span = f"bytes {start}-{total - 1}/{total}" if sent else f"bytes */{total}"
        else:
            if not sent:
                return False
            span = f"bytes {start}-{start + sent - 1}/*"
        self.fs._request("PUT", session_uri, self._uri(), ok=(200, 201, 308), data=data[:sent], headers={"Content-Range": span})
        self.offset += sent
        self.buffer = io.BytesIO()
        self.buffer.write(data[sent:])
        return False  # the offset and the buffer are kept here: only whole chunks were sent

    def discard(self) -> None:
        """Cancel the upload: the object is not created (or replaced), and closing sends nothing."""
        session_uri = getattr(self, "_session_uri", None)
        if session_uri is not None:
            import contextlib

            with contextlib.suppress(Exception):
                self.fs._request("DELETE", session_uri, self._uri(), ok=(200, 204, 404, 410, 499))
            self._session_uri = None
        self.buffer = io.BytesIO()
        self.forced = True  # close() then finalizes nothing
        self.closed = True
