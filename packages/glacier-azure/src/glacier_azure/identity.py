"""Azure identity at run time: a function app's managed identity tokens, and federated credentials for other clouds' functions.

- **Inside Azure Functions** (``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` are set, as
  App Service sets them; hook ``glacier_identity_token``): :func:`identity_token` asks
  azure-identity's :class:`~azure.identity.ManagedIdentityCredential` for a token of
  the app's user-assigned identity (``AZURE_CLIENT_ID``) for the audience another
  cloud's federation expects (``api://AzureADTokenExchange``, which AWS's OIDC provider
  and Google's pool both take).
- **A function on another cloud that reaches Blob Storage** (hook
  ``glacier_configure_credentials``; :func:`configure_federated_token`): its
  environment names the federated identity (``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``)
  and the audience its credential trusts (``GLACIER_AZURE_FEDERATED_AUDIENCE``), as
  :mod:`glacier_azure.infra.federation` generated them. The function's own token for
  that audience (Google's ID token on Cloud Functions) is written to a private file
  named by ``AZURE_FEDERATED_TOKEN_FILE``: azure-identity's ``WorkloadIdentityCredential``
  (part of ``DefaultAzureCredential``, which adlfs and polars' Azure credential
  provider use) and object_store read exactly these three variables and exchange the
  token with Entra themselves. Nothing is done where a client secret or a token file
  is already given.

A Lambda function reaches Blob Storage with a client secret instead (no federation
trusts AWS roles): glacier-aws reads it from Secrets Manager into ``AZURE_CLIENT_SECRET``
(:func:`glacier_aws.identity.read_secrets`), which ``DefaultAzureCredential``'s
environment credential uses with ``AZURE_CLIENT_ID`` and ``AZURE_TENANT_ID``.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Final

from glacier.errors import IdentityError
from glacier.plugins.identity import audience_token_file

__all__ = ["AUDIENCE_ENV", "configure_credentials", "configure_federated_token", "identity_token"]

#: The audience of the token the federated identity's credential trusts.
AUDIENCE_ENV: Final = "GLACIER_AZURE_FEDERATED_AUDIENCE"


def identity_token(audience: str) -> str | None:
    """A token of this function app's managed identity for ``audience``; ``None`` outside App Service / Azure Functions.

    Raises
    ------
    IdentityError
        Inside Azure Functions, when the identity endpoint gives no token.
    """
    if not (os.environ.get("IDENTITY_ENDPOINT") and os.environ.get("IDENTITY_HEADER")):
        return None
    client_id = os.environ.get("AZURE_CLIENT_ID") or None
    try:
        from azure.identity import ManagedIdentityCredential

        with ManagedIdentityCredential(client_id=client_id) as credential:
            token = credential.get_token(f"{audience.rstrip('/')}/.default").token
    except Exception as exc:
        who = f"the identity {client_id} (AZURE_CLIENT_ID)" if client_id else "the app's system-assigned identity"
        msg = f"the managed identity endpoint gave no token of {who} for the audience {audience!r} ({type(exc).__name__}: {exc})"
        hint = "deploy the function app with the user-assigned identity the generated Terraform gives it, and keep AZURE_CLIENT_ID its client id"
        raise IdentityError(msg, hint) from exc
    return str(token)


def configure_federated_token(environ: MutableMapping[str, str]) -> bool:
    """Give azure-identity and object_store this function's token for the federated identity; whether it did.

    Does nothing (``False``) without ``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID`` and
    ``GLACIER_AZURE_FEDERATED_AUDIENCE``, or where ``AZURE_FEDERATED_TOKEN_FILE`` or
    ``AZURE_CLIENT_SECRET`` is already set.

    Raises
    ------
    IdentityError
        When no plugin can get this function's token for the audience.
    """
    client, tenant, audience = environ.get("AZURE_CLIENT_ID"), environ.get("AZURE_TENANT_ID"), environ.get(AUDIENCE_ENV)
    if not (client and tenant and audience) or environ.get("AZURE_FEDERATED_TOKEN_FILE") or environ.get("AZURE_CLIENT_SECRET"):
        return False
    try:
        path = audience_token_file(audience)
    except IdentityError as exc:
        msg = f"this function reaches Azure Blob Storage as the federated identity {client} (AZURE_CLIENT_ID) with its own token for {audience!r}, but {exc.what}"
        raise IdentityError(msg, exc.hint) from exc
    environ["AZURE_FEDERATED_TOKEN_FILE"] = str(path)
    return True


def configure_credentials(environ: MutableMapping[str, str]) -> None:
    """:func:`configure_federated_token` (hook ``glacier_configure_credentials``)."""
    configure_federated_token(environ)
