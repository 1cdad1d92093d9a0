"""AWS credentials at run time: a web identity for functions of other clouds, secrets for Lambda's own.

Two things happen before a deployed function's first step (hook
``glacier_configure_credentials``, see :mod:`glacier.plugins.identity`):

- **A function on another cloud that reaches S3** (:func:`configure_web_identity`): its
  environment names the role to assume (``AWS_ROLE_ARN``) and the audience of the token
  the role's trust policy takes (``GLACIER_AWS_WEB_IDENTITY_AUDIENCE``), as
  :mod:`glacier_aws.infra.federation` generated them. Its own identity's token for that
  audience (Google's ID token on Cloud Functions, Entra's on Azure Functions) is
  written to a private file (:func:`glacier.plugins.identity.audience_token_file`), and
  ``AWS_WEB_IDENTITY_TOKEN_FILE`` and ``AWS_ROLE_SESSION_NAME`` are set: botocore's
  standard credential chain (s3fs's) then calls ``sts:AssumeRoleWithWebIdentity``
  itself, and again when the session expires, and polars is given that same chain
  (:class:`glacier_aws.storage.BotocoreCredentials`). Nothing is done where AWS
  credentials are already given.
- **A Lambda function that reaches a cloud no federation trusts AWS roles for**
  (:func:`read_secrets`): its environment names a Secrets Manager secret by ARN
  (``GLACIER_AZURE_CLIENT_SECRET_ARN``, from :func:`glacier_aws.infra.federation.home_secrets`);
  the value is read with the function's own role and put in the process's environment
  under the name the other cloud's library reads (``AZURE_CLIENT_SECRET``), and nowhere
  else: not a file, a log, a payload or a record.

Unlike glacier-gcp and glacier-azure, this package implements no ``glacier_identity_token``:
a Lambda function never shows another cloud an OIDC token of its own. Google's
federation takes the role's signed ``GetCallerIdentity`` request instead (google-auth's
``aws1`` source, :mod:`glacier_gcp.identity`), and Azure trusts no AWS role (the secret above).
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from typing import Final

from glacier.errors import IdentityError
from glacier.plugins.identity import audience_token_file

__all__ = ["AUDIENCE_ENV", "SECRETS", "configure_credentials", "configure_web_identity", "read_secrets", "session_name"]

#: The audience of the token a role's trust policy takes (set beside ``AWS_ROLE_ARN``).
AUDIENCE_ENV: Final = "GLACIER_AWS_WEB_IDENTITY_AUDIENCE"
#: Environment variables naming a Secrets Manager secret by ARN -> where its value goes.
SECRETS: Final = {"GLACIER_AZURE_CLIENT_SECRET_ARN": "AZURE_CLIENT_SECRET"}
_CREDENTIAL_ENV: Final = ("AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


def session_name(environ: MutableMapping[str, str]) -> str:
    """The role session's name: ``glacier-`` and the function's name (``GLACIER_FUNCTION``), as STS allows it.

    Examples
    --------
    >>> session_name({"GLACIER_FUNCTION": "etl-clean/v2"})
    'glacier-etl-clean-v2'
    """
    function = environ.get("GLACIER_FUNCTION") or environ.get("K_SERVICE") or environ.get("WEBSITE_SITE_NAME") or str(os.getpid())
    return re.sub(r"[^\w+=,.@-]", "-", f"glacier-{function}")[:64]


def configure_web_identity(environ: MutableMapping[str, str]) -> bool:
    """Give botocore and object_store a web identity token for ``AWS_ROLE_ARN``; whether one was set up.

    Does nothing (``False``) without both ``AWS_ROLE_ARN`` and
    ``GLACIER_AWS_WEB_IDENTITY_AUDIENCE``, or where AWS credentials are already given
    (keys, a token file, a profile, a container's credentials).

    Raises
    ------
    IdentityError
        When no plugin can get this function's token for the audience.
    """
    role, audience = environ.get("AWS_ROLE_ARN"), environ.get(AUDIENCE_ENV)
    if not role or not audience or any(environ.get(name) for name in _CREDENTIAL_ENV):
        return False
    try:
        path = audience_token_file(audience)
    except IdentityError as exc:
        msg = f"this function reaches S3 as the role {role} (AWS_ROLE_ARN) with a web identity token for {audience!r}, but {exc.what}"
        raise IdentityError(msg, exc.hint) from exc
    environ["AWS_WEB_IDENTITY_TOKEN_FILE"] = str(path)
    environ.setdefault("AWS_ROLE_SESSION_NAME", session_name(environ))
    return True


def read_secrets(environ: MutableMapping[str, str]) -> list[str]:
    """Read each secret named in :data:`SECRETS` from Secrets Manager into ``environ``; the variables set.

    A variable already set is left as it is (and its secret not read). The region is
    the secret ARN's own.

    Raises
    ------
    IdentityError
        When a secret cannot be read (it names the ARN, never a value).
    """
    done = []
    for source, target in SECRETS.items():
        arn = environ.get(source)
        if not arn or environ.get(target):
            continue
        try:
            import botocore.session

            region = arn.split(":")[3] if arn.count(":") >= 5 else environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
            client = botocore.session.get_session().create_client("secretsmanager", region_name=region)
            value = client.get_secret_value(SecretId=arn).get("SecretString")
        except Exception as exc:
            msg = f"could not read the secret {arn} ({source}) from Secrets Manager ({type(exc).__name__})"
            hint = (
                "put the value in after terraform apply (docs/multicloud.md: `aws secretsmanager put-secret-value --secret-id"
                f" {arn} ...`); the function's role may read exactly this secret"
            )
            raise IdentityError(msg, hint) from None
        if not value:
            msg = f"the secret {arn} ({source}) has no string value"
            raise IdentityError(msg, f"put the client secret in with `aws secretsmanager put-secret-value --secret-id {arn} --secret-string ...`")
        environ[target] = value
        done.append(target)
    return done


def configure_credentials(environ: MutableMapping[str, str]) -> None:
    """:func:`configure_web_identity` and :func:`read_secrets` (hook ``glacier_configure_credentials``)."""
    configure_web_identity(environ)
    read_secrets(environ)
