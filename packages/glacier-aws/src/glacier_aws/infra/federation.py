"""Keyless access across clouds, AWS's side: roles for other clouds' functions, tokens for its own.

Each cloud generates its own side of a cross-cloud pair, coordinated through
:func:`glacier.infra.access.foreign_access` and two Terraform locals per pair
(:func:`~glacier.infra.access.identity_local`, :func:`~glacier.infra.access.access_local`):

- **S3 buckets reached from another cloud** (:func:`add_foreign_roles`): one role per
  foreign function, whose trust policy admits only that function's own identity through
  ``sts:AssumeRoleWithWebIdentity``, and whose inline policy is rendered from the access
  model by :func:`glacier_aws.infra.iam.role_statements`, as at home (only its sources,
  targets and temporaries on S3). For a Cloud Function the issuer is Google
  (``accounts.google.com``, built into AWS as a federated principal; the condition pins
  ``accounts.google.com:sub`` to the service account's unique id); for an Azure Function
  it is the Entra tenant, declared once as an ``aws_iam_openid_connect_provider`` (the
  condition pins the token's ``sub`` to the managed identity's object id). The role's ARN
  is published as ``local.<access_local>.role_arn``.
- **A Lambda function that reaches another cloud** (:func:`home_environment`): its identity
  (account, role name and ARN) is published as ``local.<identity_local>``, and its
  environment gets what the other cloud published for it: for Google Cloud, a Workload
  Identity Federation credential configuration (``external_account`` JSON, no key: the
  Lambda's own role credentials sign the token request). Entra has no federation that
  trusts AWS roles (it needs an OIDC issuer): for Azure the function gets the ARN of a
  Secrets Manager secret (:func:`home_secrets`) that holds the client secret of the
  Entra application Azure's side declares for it. The secret's *value* is never in
  Terraform: no ``aws_secretsmanager_secret_version`` is generated, and the operator puts
  the value in after ``terraform apply`` (``docs/multicloud.md`` says how). The role may
  read that one secret (``secretsmanager:GetSecretValue``) and nothing else of the store.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Final

from glacier.infra.access import ForeignAccess, UnfederatedAccessWarning, access_local, identity_local
from glacier.infra.naming import bounded_name
from glacier.infra.terraform import Block, Ref, TerraformModule, terraform_identifier

from glacier_aws.infra.iam import literal, role_statements

if TYPE_CHECKING:
    from collections.abc import Callable

    from glacier.infra.generate import FunctionSpec

__all__ = ["SECRET_CLOUDS", "SECRET_ENV", "home_secrets", "secret_identifier", "GOOGLE_ISSUER", "ENTRA_AUDIENCE", "WEB_IDENTITY_AUDIENCE", "add_foreign_roles", "home_environment", "foreign_role_identifier", "ENVIRONMENT"]

#: Google's issuer, a federated principal AWS knows without an OIDC provider resource.
GOOGLE_ISSUER: Final = "accounts.google.com"
#: The audience a Cloud Function asks Google's metadata server to put in its ID token.
WEB_IDENTITY_AUDIENCE: Final = "sts.amazonaws.com"
#: The audience (application ID URI) an Azure Function asks Entra for.
ENTRA_AUDIENCE: Final = "api://AzureADTokenExchange"
#: The environment variable of a Lambda function, per foreign cloud, and the key of the
#: owning cloud's local that fills it.
ENVIRONMENT: Final = {
    "gcp": {"GLACIER_GCP_CREDENTIAL_CONFIG": "credential_config"},
    "azure": {"AZURE_CLIENT_ID": "client_id", "AZURE_TENANT_ID": "tenant_id"},
}
#: The clouds a Lambda function reaches with a secret from Secrets Manager (no federation exists).
SECRET_CLOUDS: Final = frozenset({"azure"})
#: The environment variable naming that secret's ARN.
SECRET_ENV: Final = "GLACIER_AZURE_CLIENT_SECRET_ARN"
_SECRET_SKIPS: Final = {
    "CKV_AWS_149": (
        "Secrets Manager encrypts the secret with its AWS-managed key aws/secretsmanager, which only"
        " principals granted GetSecretValue on it (the function's role) can use through Secrets Manager;"
        " Glacier creates no customer-managed KMS key"
    ),
    "CKV2_AWS_57": (
        "the value is an Entra application's client secret created outside Terraform; rotate it in"
        " Entra (az ad app credential reset) and put the new value here; no rotation Lambda is generated"
    ),
}


def foreign_role_identifier(spec: FunctionSpec) -> str:
    """The Terraform name of the role a function on another cloud assumes here."""
    return terraform_identifier(f"{spec.name}_federated".replace("-", "_"))


def add_foreign_roles(module: TerraformModule, pairs: list[ForeignAccess], bucket_arn: Callable[[str], str]) -> None:
    """Add one federated role per function of another cloud that touches S3.

    Parameters
    ----------
    module
        The root module.
    pairs
        The pipeline's :class:`~glacier.infra.access.ForeignAccess` whose cloud is ``"aws"``.
    bucket_arn
        The ARN (a Terraform template) of an S3 bucket by name.

    Warns
    -----
    UnfederatedAccessWarning
        When a pair's home cloud is one AWS cannot federate with.
    """
    entra: Ref | None = None
    for pair in pairs:
        spec = pair.spec
        identity = f"local.{identity_local(spec)}"
        ident = foreign_role_identifier(spec)
        if pair.home == "gcp":
            principal = Block(type="Federated", identifiers=[GOOGLE_ISSUER])
            conditions = [
                Block(test="StringEquals", variable=f"{GOOGLE_ISSUER}:sub", values=[f"${{{identity}.unique_id}}"]),
                # Google's ID token carries the audience the function asked for as "aud"
                # (AWS's accounts.google.com:oaud); only tokens minted for AWS are taken.
                Block(test="StringEquals", variable=f"{GOOGLE_ISSUER}:oaud", values=[WEB_IDENTITY_AUDIENCE]),
            ]
        elif pair.home == "azure":
            if entra is None:
                entra = module.resource(
                    "aws_iam_openid_connect_provider",
                    "glacier_entra",
                    {
                        # The tenant of the pipeline's Azure identities (one tenant per pipeline).
                        "url": f"https://sts.windows.net/${{{identity}.tenant_id}}/",
                        "client_id_list": [ENTRA_AUDIENCE],
                    },
                )
            issuer = f"sts.windows.net/${{{identity}.tenant_id}}/"
            principal = Block(type="Federated", identifiers=[str(entra.arn)])
            conditions = [
                Block(test="StringEquals", variable=f"{issuer}:sub", values=[f"${{{identity}.principal_id}}"]),
                Block(test="StringEquals", variable=f"{issuer}:aud", values=[ENTRA_AUDIENCE]),
            ]
        else:
            msg = f"function {spec.name!r} on {pair.home!r} reads or writes S3, but glacier-aws knows no federation that trusts {pair.home!r} identities; nothing is granted there, and the step will be refused at run time"
            warnings.warn(msg, UnfederatedAccessWarning, stacklevel=2)
            continue
        trust = module.data(
            "aws_iam_policy_document",
            f"{ident}_assume_role",
            {"statement": Block(sid="OnlyThisFunctionsIdentity", effect="Allow", actions=["sts:AssumeRoleWithWebIdentity"], principals=principal, condition=conditions)},
        )
        role = module.resource(
            "aws_iam_role",
            ident,
            {
                "name": literal(bounded_name(f"{spec.name}-{pair.home}", 64)),
                "description": literal(f"Glacier task {spec.task.name} on {pair.home}: what it touches on S3"),
                "assume_role_policy": trust.json,
                # Web identity sessions last an hour at most by default; a step longer than
                # that re-assumes the role (botocore refreshes web identity credentials).
                "max_session_duration": 3600,
            },
        )
        access = module.data("aws_iam_policy_document", ident, {"statement": role_statements(spec, bucket_arn, None)})
        module.resource("aws_iam_role_policy", ident, {"name": "glacier-step-access", "role": role.id, "policy": access.json})
        module.local(access_local(spec, "aws"), {"role_arn": str(role.arn), "audience": WEB_IDENTITY_AUDIENCE if pair.home == "gcp" else ENTRA_AUDIENCE})


def secret_identifier(spec: FunctionSpec, cloud: str) -> str:
    """The Terraform name of the Secrets Manager secret a Lambda function reads for ``cloud``."""
    return terraform_identifier(f"{spec.name}_{cloud}".replace("-", "_"))


def home_secrets(module: TerraformModule, spec: FunctionSpec, clouds: list[str]) -> list[Block]:
    """Declare the secrets (no value) a Lambda function needs for ``clouds``; return the statement that reads them.

    Returns
    -------
    list of Block
        One ``secretsmanager:GetSecretValue`` statement on exactly these secrets, or none.
    """
    arns = []
    for cloud in sorted(set(clouds) & SECRET_CLOUDS):
        secret = module.resource(
            "aws_secretsmanager_secret",
            secret_identifier(spec, cloud),
            {
                "name": literal(f"glacier/{spec.name}/{cloud}-client-secret"),
                "description": literal(
                    f"The client secret of the Entra application Glacier task {spec.task.name} uses on {cloud};"
                    " its value is put in outside Terraform"
                ),
                "recovery_window_in_days": 7,
            },
        )
        for check_id, reason in sorted(_SECRET_SKIPS.items()):
            module.skip_check(secret, check_id, reason)
        arns.append(str(secret.arn))
    if not arns:
        return []
    return [Block(sid="ReadOwnCrossCloudSecret", effect="Allow", actions=["secretsmanager:GetSecretValue"], resources=sorted(arns))]


def home_environment(module: TerraformModule, spec: FunctionSpec, role: Ref, clouds: list[str]) -> dict[str, str]:
    """Publish a Lambda function's identity and return the environment it needs for ``clouds``.

    Parameters
    ----------
    module
        The root module.
    spec
        The function.
    role
        Its ``aws_iam_role``.
    clouds
        The other clouds whose buckets it touches.

    Warns
    -----
    UnfederatedAccessWarning
        When a cloud is one glacier-aws cannot reach without a long-lived secret.
    """
    if not clouds:
        return {}
    account = module.data("aws_caller_identity", "current", {}).account_id
    module.local(identity_local(spec), {"account_id": str(account), "role_name": str(role.name), "role_arn": str(role.arn)})
    env: dict[str, Any] = {}
    for cloud in clouds:
        if cloud not in ENVIRONMENT:
            msg = (
                f"function {spec.name!r} runs on Lambda and touches {cloud!r} buckets; no federation lets an AWS"
                f" role reach {cloud!r} without a long-lived secret, and Glacier does not generate one yet: it gets"
                f" no credentials there, and the step will be refused at run time.\n\n"
                f"Hint: run the step on {cloud!r} or on this machine, or move the bucket."
            )
            warnings.warn(msg, UnfederatedAccessWarning, stacklevel=2)
            continue
        for name, key in ENVIRONMENT[cloud].items():
            env[name] = f"${{local.{access_local(spec, cloud)}.{key}}}"
        if cloud in SECRET_CLOUDS:  # the secret's ARN, never its value
            env[SECRET_ENV] = f"${{aws_secretsmanager_secret.{secret_identifier(spec, cloud)}.arn}}"
    return env
