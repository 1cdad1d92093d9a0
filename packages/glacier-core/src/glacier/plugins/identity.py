"""A deployed function's own identity, turned into credentials for other clouds at run time.

The generated infrastructure gives a function that touches another cloud's buckets
only *names* in its environment: a role to assume and the audience of the token it
presents (``AWS_ROLE_ARN``), a federated client (``AZURE_CLIENT_ID``), an
``external_account`` configuration with no key (``GLACIER_GCP_CREDENTIAL_CONFIG``), or
the address of a secret in its own cloud's store. This module turns those into what
each storage library reads, once per process, before the first step touches a
foreign bucket (:func:`configure_credentials`, called by
:func:`glacier.run.protocol.handle_deployed`):

- :func:`identity_token` asks the plugins (hook ``glacier_identity_token``) for an
  OIDC token of the function's own identity: Google's metadata server on Cloud
  Functions, the managed identity endpoint on Azure Functions;
- :class:`TokenFile` keeps such a token in a private file (``0600`` in a ``0700``
  folder), rewritten atomically before it goes stale, for the libraries that read a
  token from a file (botocore's and object_store's web identity, azure-identity's
  workload identity, google-auth's file-sourced external account);
- each provider's ``glacier_configure_credentials`` hook sets the environment
  variables its libraries read (``AWS_WEB_IDENTITY_TOKEN_FILE``,
  ``AZURE_FEDERATED_TOKEN_FILE``, ``GOOGLE_APPLICATION_CREDENTIALS``...).

Tokens and secrets are never logged, never put in a payload, a result or a run record;
a token lives in its file, a secret read from a secret store only in the process's
environment.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any, Final

from glacier._atomic import write_atomic
from glacier.errors import IdentityError

__all__ = [
    "IDENTITY_DIR_ENV",
    "MAX_TOKEN_AGE",
    "TokenFile",
    "audience_token_file",
    "configure_credentials",
    "identity_dir",
    "identity_token",
    "jwt_claims",
    "refresh_tokens",
    "write_private",
]

log = logging.getLogger("glacier")

#: The environment variable naming the folder of token and credential files (made ``0700``).
IDENTITY_DIR_ENV: Final = "GLACIER_IDENTITY_DIR"
#: A token file is rewritten once it is this many seconds old (or half its lifetime, if shorter).
MAX_TOKEN_AGE: Final = 600.0

_lock = threading.RLock()
_default_dir: Path | None = None
_token_files: dict[str, TokenFile] = {}
_configured = False
_refresher: threading.Thread | None = None
_wake = threading.Event()  # set when a token file is added: the refresh thread looks again
#: The longest the refresh thread sleeps between looks at its token files.
_REFRESH_POLL = 30.0


def identity_dir() -> Path:
    """The private folder of this process's token and credential files, created ``0700``.

    ``GLACIER_IDENTITY_DIR`` when set; else a temporary folder of this process's own,
    removed when the process exits.
    """
    global _default_dir
    named = os.environ.get(IDENTITY_DIR_ENV)
    with _lock:
        if named:
            folder = Path(named)
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        else:
            if _default_dir is None or not _default_dir.is_dir():
                _default_dir = Path(tempfile.mkdtemp(prefix="glacier-identity-"))  # 0700 by mkdtemp
                atexit.register(shutil.rmtree, _default_dir, ignore_errors=True)
            folder = _default_dir
        # Whoever made it, only this user may list or open what is in it.
        os.chmod(folder, 0o700)
        return folder


def write_private(name: str, data: str | bytes) -> Path:
    """Write ``data`` to ``name`` in :func:`identity_dir`, readable by this user only (``0600``), atomically.

    The content goes to a temporary file beside the target (created ``0600``), which
    then replaces it: a library reading the file meanwhile sees the old content or the
    new, never a part.

    Examples
    --------
    >>> import stat
    >>> path = write_private("example.txt", "not a secret")
    >>> oct(stat.S_IMODE(path.stat().st_mode)), path.read_text()
    ('0o600', 'not a secret')
    """
    if not name or "/" in name or name.startswith("."):
        msg = f"a private file's name must be a plain file name, got {name!r}"
        raise ValueError(msg)
    path = identity_dir() / name
    write_atomic(path, data)
    os.chmod(path, 0o600)  # mkstemp makes it 0600 already; a pre-existing file keeps nothing wider
    return path


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT's payload, decoded **without** verifying its signature.

    Only for timing a refresh (``exp``, ``iat``): the token is checked by whoever it is
    presented to. A token that is not a JWT has no claims (``{}``).

    Examples
    --------
    >>> jwt_claims("eyJhbGciOiJub25lIn0.eyJleHAiOjIwMDAsImlhdCI6MTAwMH0.")
    {'exp': 2000, 'iat': 1000}
    >>> jwt_claims("opaque")
    {}
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


class TokenFile:
    """An identity token kept in a private file, rewritten before it goes stale.

    The file is ``name`` in :func:`identity_dir` (``0600`` in a ``0700`` folder). It is
    written on the first :meth:`refresh` and again by any later one once it is stale:
    older than ``max_age`` seconds (10 minutes), or older than half the token's own
    lifetime (from the JWT's ``iat`` and ``exp``, read without verification) when that
    is shorter. Each write is atomic (a temporary file, then ``os.replace``), so a
    library re-reading the file mid-refresh gets a whole token.

    Parameters
    ----------
    name
        The file's name in the identity folder.
    fetch
        Gets a fresh token (usually ``lambda: identity_token(audience)``).
    max_age
        Seconds after which the token is rewritten whatever its lifetime.
    clock
        The current time in seconds since the epoch (``time.time``).

    Examples
    --------
    >>> tokens = iter(["first", "second"])
    >>> file = TokenFile("example-token", lambda: next(tokens))
    >>> file.refresh().read_text()
    'first'
    >>> file.refresh().read_text()  # still fresh: not fetched again
    'first'
    >>> file.refresh(force=True).read_text()
    'second'
    """

    def __init__(self, name: str, fetch: Callable[[], str], *, max_age: float = MAX_TOKEN_AGE, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.fetch = fetch
        self.max_age = max_age
        self.clock = clock
        self.written_at: float | None = None
        self.lifetime: float | None = None
        self._path: Path | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """Where the token is (or will be) written."""
        return self._path if self._path is not None else identity_dir() / self.name

    def refresh_after(self) -> float:
        """Seconds after a write at which the token is stale: ``max_age``, or half its lifetime if shorter."""
        if self.lifetime is None:
            return self.max_age
        return min(self.max_age, self.lifetime / 2)

    def is_stale(self) -> bool:
        """Whether the next :meth:`refresh` fetches a new token (never written, missing, or old)."""
        if self.written_at is None or self._path is None or not self._path.is_file():
            return True
        return self.clock() - self.written_at >= self.refresh_after()

    def refresh(self, *, force: bool = False) -> Path:
        """Write a fresh token if the file is stale (or ``force``); return the file's path.

        Raises
        ------
        IdentityError
            When ``fetch`` gives no token (it may raise its own error as well).
        """
        with self._lock:
            if not force and not self.is_stale():
                return self.path
            token = self.fetch()
            if not isinstance(token, str) or not token.strip():
                msg = f"the identity token for {self.name!r} came back empty"
                raise IdentityError(msg, "check the function's identity (its service account or managed identity) and the audience it asks for")
            now = self.clock()
            claims = jwt_claims(token)
            exp, iat = claims.get("exp"), claims.get("iat", now)
            self.lifetime = float(exp) - float(iat) if isinstance(exp, (int, float)) and isinstance(iat, (int, float)) else None
            self._path = write_private(self.name, token.strip())
            self.written_at = now
            return self._path


def identity_token(audience: str) -> str:
    """An OIDC token of this function's own identity for ``audience``, from the first plugin that gives one.

    Asks hook ``glacier_identity_token``: glacier-gcp answers inside Cloud Functions
    (Google's metadata server), glacier-azure inside Azure Functions (the managed
    identity endpoint).

    Raises
    ------
    IdentityError
        When no installed plugin can get a token here; it names the audience and the fix.
    """
    from glacier.plugins.registry import get_plugin_manager

    token = get_plugin_manager().hook.glacier_identity_token(audience=audience)
    if not token:
        msg = (
            f"no installed Glacier plugin can get an identity token for the audience {audience!r} here: the function needs its own"
            " identity's OIDC token to reach another cloud's buckets without a key"
        )
        hint = (
            "run the step where a plugin knows the identity (Cloud Functions: glacier-gcp, through Google's metadata server;"
            " Azure Functions: glacier-azure, through IDENTITY_ENDPOINT), install that plugin in the function's artifact,"
            " or give the function credentials for that cloud through its standard environment variables"
        )
        raise IdentityError(msg, hint)
    return str(token)


def audience_token_file(audience: str) -> Path:
    """A fresh :class:`TokenFile` of this function's token for ``audience``; its path.

    One file per audience and process (two clouds that take the same audience share
    it). It is kept fresh by :func:`refresh_tokens`, which each invocation calls, and
    by a daemon thread of this process that rewrites a token when it goes stale, so
    that a library refreshing its session in the middle of a long step (botocore, an
    hour after it assumed a role) reads a token that is still valid.
    """
    global _refresher
    with _lock:
        file = _token_files.get(audience)
        if file is None:
            safe = "".join(c if c.isalnum() else "-" for c in audience).strip("-")[:64] or "token"
            file = TokenFile(f"token-{safe}.jwt", lambda: identity_token(audience))
            _token_files[audience] = file
            _wake.set()
        path = file.refresh()
        if _refresher is None or not _refresher.is_alive():
            _refresher = threading.Thread(target=_keep_fresh, name="glacier-token-refresh", daemon=True)
            _refresher.start()
    return path


def refresh_tokens() -> list[Path]:
    """Rewrite every stale token file of :func:`audience_token_file`; return their paths."""
    with _lock:
        files = list(_token_files.values())
    return [file.refresh() for file in files]


def _keep_fresh() -> None:
    """Rewrite each token file when it goes stale, for as long as the process lives."""
    while True:
        with _lock:
            files = list(_token_files.values())
        now = time.time()
        due = [(file.written_at or now) + file.refresh_after() - now for file in files]
        _wake.wait(max(0.0, min([_REFRESH_POLL, *due])))
        _wake.clear()
        for file in files:
            try:
                file.refresh()
            except Exception as exc:  # noqa: BLE001 - the next invocation's refresh_tokens() raises it as the step's error
                log.warning("glacier: could not refresh the identity token file %s (%s); retrying", file.name, type(exc).__name__)
                time.sleep(min(_REFRESH_POLL, 5.0))


def configure_credentials(environ: MutableMapping[str, str] | None = None) -> None:
    """Set up this function's credentials for other clouds, once per process; later calls refresh its tokens.

    Calls every plugin's ``glacier_configure_credentials`` with ``environ`` (the
    process's environment by default), so that each sets what its storage libraries
    read. A call with an explicit ``environ`` always runs the hooks. A failed set-up is
    tried again by the next call.

    Raises
    ------
    IdentityError
        When a provider cannot set up its credentials (no token, an unreadable secret).
    """
    global _configured
    from glacier.plugins.registry import get_plugin_manager

    with _lock:
        if environ is None and _configured:
            refresh_tokens()
            return
        get_plugin_manager().hook.glacier_configure_credentials(environ=os.environ if environ is None else environ)
        if environ is None:
            _configured = True
