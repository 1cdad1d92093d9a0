"""Keyless access across clouds, Google Cloud's side: Workload Identity Federation for other clouds' functions.

Each cloud generates its own side of a cross-cloud pair, coordinated through
:func:`glacier.infra.access.foreign_access` and two Terraform locals per pair
(:func:`~glacier.infra.access.identity_local`, :func:`~glacier.infra.access.access_local`):

- **GCS buckets reached from another cloud** (:func:`add_foreign_accounts`): one
  workload identity pool per pipeline, with one provider per foreign cloud: ``aws``
  (the account of the Lambda roles; the attribute condition admits only the pipeline's
  Lambda roles) and ``oidc`` for Entra (the tenant's issuer; the condition admits only the
  pipeline's managed identities). Each foreign function gets a service account of its
  own, which only its identity may impersonate (``roles/iam.workloadIdentityUser`` for
  ``principalSet://.../attribute.aws_role/ROLE`` or ``principal://.../subject/OBJECT_ID``),
  bound to the buckets exactly as at home (:func:`glacier_gcp.infra.iam.bucket_bindings`).
  What the function needs, an ``external_account`` credential configuration (no key), is
  published as ``local.<access_local>.credential_config``.
- **A Cloud Function that reaches another cloud** (:func:`home_environment`): its service
  account's unique id and email are published as ``local.<identity_local>``; its
  environment gets the role to assume on AWS (``AWS_ROLE_ARN``, with the audience of the
  Google ID token it presents) or the client and tenant of its federated identity on Azure
  (``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``, with the audience).
"""

from __future__ import annotations

import warnings
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from glacier.infra.access import ForeignAccess, UnfederatedAccessWarning, access_local, identity_local
from glacier.infra.naming import bounded_name
from glacier.infra.terraform import Block, Ref, TerraformModule, terraform_identifier

from glacier_gcp.identity import TOKEN_FILE_PREFIX
from glacier_gcp.infra.iam import bucket_bindings, literal

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec

__all__ = ["ENTRA_AUDIENCE", "ENVIRONMENT", "add_foreign_accounts", "credential_config", "foreign_account_identifier", "home_environment"]

#: The audience an Azure Function asks Entra for, and the pool's OIDC provider allows.
ENTRA_AUDIENCE: Final = "api://AzureADTokenExchange"
#: A Cloud Function's environment, per foreign cloud: variable -> key of the owning cloud's local.
ENVIRONMENT: Final = {
    "aws": {"AWS_ROLE_ARN": "role_arn", "GLACIER_AWS_WEB_IDENTITY_AUDIENCE": "audience"},
    "azure": {"AZURE_CLIENT_ID": "client_id", "AZURE_TENANT_ID": "tenant_id", "GLACIER_AZURE_FEDERATED_AUDIENCE": "audience"},
}

# checkov 3.3.30 applies its GitHub Actions check to every pool provider (it fired on the aws one).
_GITHUB_CHECK_REASON: Final = (
    "this provider trusts the pipeline's own AWS account or Entra tenant, not GitHub Actions; its"
    " attribute_condition admits only the pipeline's Lambda roles or managed identities by name or object id"
)


def foreign_account_identifier(spec: FunctionSpec) -> str:
    """The Terraform name of the service account a function on another cloud impersonates here."""
    return terraform_identifier(f"{spec.name}_federated".replace("-", "_"))


def credential_config(home: str, audience: str, email: str) -> str:
    """The ``external_account`` credential configuration of a function on ``home`` (JSON, no secret).

    ``audience`` is the pool provider's full name (``//iam.googleapis.com/projects/...``)
    and ``email`` the service account to impersonate; both may be Terraform templates.
    For a Lambda function (``aws``) google-auth signs the token request with the role's
    own credentials; for an Azure Function the token is a file that names the Entra
    audience (:data:`glacier_gcp.identity.TOKEN_FILE_PREFIX`), which the function
    replaces with its own token file at run time.

    Examples
    --------
    >>> config = json.loads(credential_config("aws", "//iam.googleapis.com/p", "sa@p.iam.gserviceaccount.com"))
    >>> config["type"], config["credential_source"]["environment_id"]
    ('external_account', 'aws1')
    >>> json.loads(credential_config("azure", "//iam.googleapis.com/p", "sa@p.iam.gserviceaccount.com"))["credential_source"]["file"]
    'glacier-identity-token:api://AzureADTokenExchange'
    """
    source: dict[str, Any]
    if home == "aws":
        # Lambda has no instance metadata: google-auth reads the role's credentials and the
        # region from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION.
        token_type = "urn:ietf:params:aws:token-type:aws4_request"
        source = {"environment_id": "aws1", "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"}
    else:
        token_type = "urn:ietf:params:oauth:token-type:jwt"
        # The managed identity's Entra token for the pool's audience, which the function
        # writes to a private file at run time (glacier_gcp.identity): Azure Functions has
        # no instance metadata address, only IDENTITY_ENDPOINT, which google-auth cannot ask.
        source = {"file": f"{TOKEN_FILE_PREFIX}{ENTRA_AUDIENCE}", "format": {"type": "text"}}
    config = {
        "type": "external_account",
        "audience": audience,
        "subject_token_type": token_type,
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": f"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
        "credential_source": source,
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def add_foreign_accounts(
    module: TerraformModule,
    pairs: list[ForeignAccess],
    *,
    pipeline: str,
    project: Ref,
    account_id: Callable[[str], str],
    bucket: Callable[[str], str],
    roles: Mapping[str, Ref],
) -> None:
    """Add the pool, its providers and one federated service account per foreign function.

    Parameters
    ----------
    module
        The root module.
    pairs
        The pipeline's :class:`~glacier.infra.access.ForeignAccess` whose cloud is ``"gcp"``.
    pipeline
        The pipeline's name (names the pool).
    project
        ``var.gcp_project``.
    account_id
        A service account ID for a name.
    bucket
        A bucket's name as a Terraform template (a reference when declared here).
    roles
        The custom roles by ID (:data:`glacier_gcp.infra.iam.CUSTOM_ROLES`).

    Warns
    -----
    UnfederatedAccessWarning
        When a pair's home cloud is one Google Cloud cannot federate with.
    """
    if not pairs:
        return
    slug = re.sub(r"[^a-z0-9]+", "-", pipeline.lower()).strip("-") or "pipeline"
    pool = module.resource(
        "google_iam_workload_identity_pool",
        "glacier",
        {
            "project": project,
            # 4 to 32 characters; "gcp-" is reserved by Google.
            "workload_identity_pool_id": bounded_name(f"glacier-{slug}", 32).rstrip("-"),
            "display_name": literal(bounded_name(f"Glacier {pipeline}", 32)),
            "description": literal(f"Functions of Glacier pipeline {pipeline} on other clouds"),
        },
    )
    homes: dict[str, list[ForeignAccess]] = {}
    for pair in pairs:
        homes.setdefault(pair.home, []).append(pair)
    providers: dict[str, Ref] = {}
    for home, members in sorted(homes.items()):
        first = f"local.{identity_local(members[0].spec)}"
        body: dict[str, Any] = {"project": project, "workload_identity_pool_id": pool.workload_identity_pool_id, "workload_identity_pool_provider_id": home}
        if home == "aws":
            roles_cel = ", ".join(f"'${{local.{identity_local(p.spec)}.role_name}}'" for p in members)
            body |= {
                "attribute_mapping": {"google.subject": "assertion.arn", "attribute.aws_role": "assertion.arn.extract('assumed-role/{role}/')"},
                # Only the pipeline's Lambda roles may exchange their credentials.
                "attribute_condition": f"attribute.aws_role in [{roles_cel}]",
                "aws": Block(account_id=f"${{{first}.account_id}}"),
            }
        elif home == "azure":
            subjects = ", ".join(f"'${{local.{identity_local(p.spec)}.principal_id}}'" for p in members)
            body |= {
                "attribute_mapping": {"google.subject": "assertion.sub"},
                "attribute_condition": f"assertion.sub in [{subjects}]",
                "oidc": Block(issuer_uri=f"https://sts.windows.net/${{{first}.tenant_id}}/", allowed_audiences=[ENTRA_AUDIENCE]),
            }
        else:
            names = ", ".join(p.spec.name for p in members)
            msg = f"functions {names} on {home!r} read or write GCS, but glacier-gcp knows no federation that trusts {home!r} identities; nothing is granted there, and the step will be refused at run time"
            warnings.warn(msg, UnfederatedAccessWarning, stacklevel=2)
            continue
        providers[home] = module.resource("google_iam_workload_identity_pool_provider", terraform_identifier(f"glacier_{home}"), body)
        module.skip_check(providers[home], "CKV_GCP_125", _GITHUB_CHECK_REASON)

    for pair in pairs:
        if pair.home not in providers:  # warned above: nothing is granted
            continue
        spec = pair.spec
        identity = f"local.{identity_local(spec)}"
        ident = foreign_account_identifier(spec)
        account = module.resource(
            "google_service_account",
            ident,
            {
                "project": project,
                "account_id": account_id(f"{spec.name}-{pair.home}"),
                "display_name": literal(bounded_name(f"Glacier {spec.name} on {pair.home}", 100)),
                "description": literal(bounded_name(f"Glacier task {spec.task.name} on {pair.home}: what it touches on GCS", 256)),
            },
        )
        if pair.home == "aws":
            member = f"principalSet://iam.googleapis.com/{pool.name}/attribute.aws_role/${{{identity}.role_name}}"
        else:
            member = f"principal://iam.googleapis.com/{pool.name}/subject/${{{identity}.principal_id}}"
        module.resource(
            "google_service_account_iam_member",
            f"{ident}_federation",
            {"service_account_id": account.name, "role": "roles/iam.workloadIdentityUser", "member": member},
        )
        for n, binding in enumerate(bucket_bindings(spec)):
            module.resource(
                "google_storage_bucket_iam_member",
                f"{ident}_{n}",
                {
                    "bucket": bucket(binding.bucket),
                    "role": roles[binding.role].name,
                    "member": f"serviceAccount:{account.email}",
                    "condition": Block(
                        title=f"{binding.role.removeprefix('glacierObject').lower()}-{spec.name}"[:100],
                        description=literal(f"What Glacier task {spec.task.name} on {pair.home} touches in {binding.bucket}"[:256]),
                        expression=literal(binding.expression),
                        comments=list(binding.notes),
                    ),
                },
            )
        audience = f"//iam.googleapis.com/{providers[pair.home].name}"
        module.local(access_local(spec, "gcp"), {"credential_config": credential_config(pair.home, audience, str(account.email)), "service_account": str(account.email)})


def home_environment(module: TerraformModule, spec: FunctionSpec, account: Ref, clouds: list[str]) -> dict[str, str]:
    """Publish a Cloud Function's identity and return the environment it needs for ``clouds``.

    Warns
    -----
    UnfederatedAccessWarning
        When a cloud is one glacier-gcp cannot reach without a long-lived secret.
    """
    if not clouds:
        return {}
    module.local(identity_local(spec), {"unique_id": str(account.unique_id), "email": str(account.email)})
    env: dict[str, str] = {}
    for cloud in clouds:
        if cloud not in ENVIRONMENT:
            msg = f"function {spec.name!r} runs on Cloud Functions and touches {cloud!r} buckets; glacier-gcp knows no federation with {cloud!r}; it gets no credentials there, and the step will be refused at run time"
            warnings.warn(msg, UnfederatedAccessWarning, stacklevel=2)
            continue
        for name, key in ENVIRONMENT[cloud].items():
            env[name] = f"${{local.{access_local(spec, cloud)}.{key}}}"
    return env
