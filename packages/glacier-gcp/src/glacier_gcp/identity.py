"""Google Cloud identity at run time: a Cloud Function's ID tokens, and federated credentials for other clouds' functions.

- **Inside Cloud Functions** (``K_SERVICE`` is set; hook ``glacier_identity_token``):
  :func:`identity_token` asks the metadata server for an ID token of the function's
  service account with the audience another cloud's federation expects (AWS's
  ``sts.amazonaws.com``, Entra's ``api://AzureADTokenExchange``), through google-auth's
  :func:`google.oauth2.id_token.fetch_id_token`.
- **A function on another cloud that reaches GCS** (hook
  ``glacier_configure_credentials``; :func:`configure_credential_config`): its
  environment holds an ``external_account`` credential configuration with no key
  (``GLACIER_GCP_CREDENTIAL_CONFIG``, from :func:`glacier_gcp.infra.federation.credential_config`).
  It is written to a private file (``0600``, :func:`glacier.plugins.identity.write_private`) named
  by ``GOOGLE_APPLICATION_CREDENTIALS``, which google-auth (gcsfs, the light client,
  polars' GCS credential provider) reads as Application Default Credentials. For a
  Lambda function google-auth then signs its own token request with the role's
  credentials (``aws1``); for an Azure Function the configuration names a token file
  by :data:`TOKEN_FILE_PREFIX` and the audience, replaced here with the path of the
  function's own Entra token (:func:`glacier.plugins.identity.audience_token_file`), which
  google-auth re-reads whenever it refreshes.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from typing import Any, Final

from glacier.errors import IdentityError
from glacier.plugins.identity import audience_token_file, write_private

__all__ = ["CONFIG_ENV", "TOKEN_FILE_PREFIX", "configure_credential_config", "configure_credentials", "identity_token"]

#: The environment variable holding a function's ``external_account`` configuration (JSON, no key).
CONFIG_ENV: Final = "GLACIER_GCP_CREDENTIAL_CONFIG"
#: A ``credential_source.file`` that starts with this names no file but an audience:
#: the function's own token for it is written to a private file, whose path replaces it.
TOKEN_FILE_PREFIX: Final = "glacier-identity-token:"
#: The name of the written configuration in the identity folder.
CONFIG_FILE: Final = "gcp-credential-config.json"


def identity_token(audience: str) -> str | None:
    """An ID token of this Cloud Function's service account for ``audience``; ``None`` outside Cloud Functions.

    Raises
    ------
    IdentityError
        Inside Cloud Functions, when the metadata server gives no token.
    """
    if not os.environ.get("K_SERVICE"):
        return None
    try:
        import google.auth.transport.requests
        import google.oauth2.id_token

        token = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    except Exception as exc:
        msg = f"the metadata server gave this Cloud Function no ID token for the audience {audience!r} ({type(exc).__name__}: {exc})"
        hint = "deploy the function with the service account the generated Terraform gives it; the metadata server must be reachable"
        raise IdentityError(msg, hint) from exc
    return str(token)


def _resolve_token_files(source: dict[str, Any]) -> None:
    """Replace a :data:`TOKEN_FILE_PREFIX` file with the path of this function's token for that audience."""
    named = source.get("file")
    if isinstance(named, str) and named.startswith(TOKEN_FILE_PREFIX):
        source["file"] = str(audience_token_file(named.removeprefix(TOKEN_FILE_PREFIX)))


def configure_credential_config(environ: MutableMapping[str, str]) -> bool:
    """Write ``GLACIER_GCP_CREDENTIAL_CONFIG`` to a private file named by ``GOOGLE_APPLICATION_CREDENTIALS``; whether it did.

    Does nothing (``False``) without the variable, or where ``GOOGLE_APPLICATION_CREDENTIALS``
    is already set.

    Raises
    ------
    IdentityError
        When the variable is not an ``external_account`` configuration, or its token
        file's audience has no token here.
    """
    text = environ.get(CONFIG_ENV)
    if not text or environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return False
    hint = "deploy the function from the Terraform that `generate` wrote; it sets this variable to an external_account configuration with no key"
    try:
        config = json.loads(text)
    except ValueError:
        config = None
    if not isinstance(config, dict) or config.get("type") != "external_account":
        msg = f"{CONFIG_ENV} is not an external_account credential configuration (JSON)"
        raise IdentityError(msg, hint)
    source = config.get("credential_source")
    if isinstance(source, dict):
        try:
            _resolve_token_files(source)
        except IdentityError as exc:
            msg = f"this function reaches GCS through Workload Identity Federation ({CONFIG_ENV}) with its own token, but {exc.what}"
            raise IdentityError(msg, exc.hint) from exc
    path = write_private(CONFIG_FILE, json.dumps(config, sort_keys=True))
    environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(path)
    return True


def configure_credentials(environ: MutableMapping[str, str]) -> None:
    """:func:`configure_credential_config` (hook ``glacier_configure_credentials``)."""
    configure_credential_config(environ)
