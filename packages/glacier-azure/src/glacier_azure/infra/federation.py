"""Keyless access across clouds, Azure's side: federated identities for other clouds' functions.

Each cloud generates its own side of a cross-cloud pair, coordinated through
:func:`glacier.infra.access.foreign_access` and two Terraform locals per pair
(:func:`~glacier.infra.access.identity_local`, :func:`~glacier.infra.access.access_local`):

- **Containers reached from another cloud** (:func:`add_foreign_identities`): one
  user-assigned identity per foreign function, with a federated identity credential that
  trusts only that function's token (for a Cloud Function: issuer
  ``https://accounts.google.com``, subject its service account's unique id), and role
  assignments rendered from the access model by :func:`glacier_azure.infra.iam.data_grants`,
  as at home (only its sources and targets, each narrowed by an ABAC condition). The
  identity's client and tenant ids are published as ``local.<access_local>``.
  Entra federated credentials need an OIDC issuer; AWS roles have none, so for a Lambda
  function Azure's side declares an Entra application and its service principal instead
  (provider ``hashicorp/azuread``), granted the same way, and **no** client secret: the
  operator creates one outside Terraform and puts it in the Secrets Manager secret that
  AWS's side declares for the function (:func:`glacier_aws.infra.federation.home_secrets`),
  so the value is never in the Terraform code or state.
- **A function app that reaches another cloud** (:func:`home_environment`): its identity's
  object (principal) id, client id and tenant are published as ``local.<identity_local>``;
  its app settings get the role to assume on AWS (``AWS_ROLE_ARN``) or the Workload Identity
  Federation credential configuration for Google Cloud (``GLACIER_GCP_CREDENTIAL_CONFIG``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from glacier.infra.access import ForeignAccess, UnfederatedAccessWarning, access_local, identity_local
from glacier.infra.naming import bounded_name
from glacier.infra.terraform import Ref, TerraformModule, terraform_identifier

from glacier_azure.infra.iam import data_grants

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec

__all__ = ["AZUREAD_VERSION", "SECRET_HOMES", "GOOGLE_ISSUER", "FEDERATED_AUDIENCE", "ENVIRONMENT", "add_foreign_identities", "foreign_identity_identifier", "home_environment"]

#: Google's issuer, as Entra federated credentials name it.
GOOGLE_ISSUER: Final = "https://accounts.google.com"
#: The audience Entra expects in a federated token (its default for federated credentials).
FEDERATED_AUDIENCE: Final = "api://AzureADTokenExchange"
#: The hashicorp/azuread provider versions the generated code is written for.
AZUREAD_VERSION: Final = "~> 3.0"
#: The home clouds whose functions reach Azure through an Entra application and a client
#: secret kept in the home cloud's secret store (no federation trusts them).
SECRET_HOMES: Final = frozenset({"aws"})
#: A function app's settings, per foreign cloud: setting -> key of the owning cloud's local.
ENVIRONMENT: Final = {
    "aws": {"AWS_ROLE_ARN": "role_arn", "GLACIER_AWS_WEB_IDENTITY_AUDIENCE": "audience"},
    "gcp": {"GLACIER_GCP_CREDENTIAL_CONFIG": "credential_config"},
}


def foreign_identity_identifier(spec: FunctionSpec) -> str:
    """The Terraform name of the identity a function on another cloud federates with here."""
    return terraform_identifier(f"{spec.name}_federated".replace("-", "_"))


def add_foreign_identities(
    module: TerraformModule, pairs: list[ForeignAccess], *, group: Ref, account_of: dict[str, str], container: Callable[[str, str], Ref]
) -> None:
    """Add one federated identity, its credential and its grants per function of another cloud.

    Parameters
    ----------
    module
        The root module.
    pairs
        The pipeline's :class:`~glacier.infra.access.ForeignAccess` whose cloud is ``"azure"``.
    group
        The resource group.
    account_of
        Container -> its storage account.
    container
        The ``azurerm_storage_container`` of (account, container).

    Warns
    -----
    UnfederatedAccessWarning
        When a pair's home cloud is one Entra cannot federate with.
    """
    for pair in pairs:
        spec = pair.spec
        ident = foreign_identity_identifier(spec)
        if pair.home in SECRET_HOMES:
            principal = _application(module, spec, pair.home, ident)
        elif pair.home == "gcp":
            principal = _federated_identity(module, spec, pair.home, ident, group)
        else:
            msg = (
                f"function {spec.name!r} runs on {pair.home!r} and touches Azure containers; Entra federated credentials"
                f" need an OIDC issuer, which {pair.home!r} roles do not have, and glacier-azure does not know {pair.home!r}'s"
                " secret store: nothing is granted there, and the step will be refused at run time.\n\n"
                "Hint: run the step on Azure, AWS, Cloud Functions or this machine."
            )
            warnings.warn(msg, UnfederatedAccessWarning, stacklevel=2)
            continue
        for i, grant in enumerate(data_grants(spec, account_of)):
            body = {
                "scope": container(grant.scope[1], grant.scope[2]).resource_manager_id,
                "role_definition_name": grant.role,
                "principal_id": principal["principal_id"],
                "principal_type": "ServicePrincipal",
                "description": f"Glacier task {spec.task.name} on {pair.home}: {grant.role} on container {grant.scope[2]}",
            }
            if grant.condition:
                body |= {"condition": grant.condition, "condition_version": "2.0"}
            module.resource("azurerm_role_assignment", f"{ident}_{i:02d}", body)
        module.local(access_local(spec, "azure"), {key: value for key, value in principal.items() if key != "principal_id"})


def _federated_identity(module: TerraformModule, spec: FunctionSpec, home: str, ident: str, group: Ref) -> dict[str, str]:
    """A user-assigned identity trusting only the function's Google token; its ids."""
    identity = f"local.{identity_local(spec)}"
    name = bounded_name(f"{spec.name}-{home}-id", 128)
    managed = module.resource("azurerm_user_assigned_identity", ident, {"name": name, "resource_group_name": group.name, "location": group.location})
    module.resource(
        "azurerm_federated_identity_credential",
        ident,
        {
            "name": bounded_name(f"{spec.name}-{home}", 120),
            "resource_group_name": group.name,
            "parent_id": managed.id,
            "issuer": GOOGLE_ISSUER,
            # The service account's numeric unique id: what Google puts in "sub".
            "subject": f"${{{identity}.unique_id}}",
            "audience": [FEDERATED_AUDIENCE],
        },
    )
    return {"principal_id": str(managed.principal_id), "client_id": str(managed.client_id), "tenant_id": str(managed.tenant_id), "audience": FEDERATED_AUDIENCE}


def _application(module: TerraformModule, spec: FunctionSpec, home: str, ident: str) -> dict[str, str]:
    """An Entra application and service principal with no credential in Terraform; its ids."""
    module.required_provider("azuread", "hashicorp/azuread", AZUREAD_VERSION)
    module.provider("azuread")
    tenant = module.data("azuread_client_config", "current", {})
    application = module.resource(
        "azuread_application",
        ident,
        {
            "display_name": bounded_name(f"glacier-{spec.name}-{home}", 120),
            "description": f"Glacier task {spec.task.name} on {home}: its client secret is created outside Terraform and kept in {home}'s secret store",
            "sign_in_audience": "AzureADMyOrg",
        },
    )
    principal = module.resource("azuread_service_principal", ident, {"client_id": application.client_id})
    return {"principal_id": str(principal.object_id), "client_id": str(application.client_id), "tenant_id": str(tenant.tenant_id)}


def home_environment(module: TerraformModule, spec: FunctionSpec, identity: Ref, clouds: list[str]) -> dict[str, str]:
    """Publish a function app's identity and return the app settings it needs for ``clouds``.

    Warns
    -----
    UnfederatedAccessWarning
        When a cloud is one glacier-azure cannot reach without a long-lived secret.
    """
    if not clouds:
        return {}
    module.local(identity_local(spec), {"principal_id": str(identity.principal_id), "client_id": str(identity.client_id), "tenant_id": str(identity.tenant_id)})
    settings: dict[str, str] = {}
    for cloud in clouds:
        if cloud not in ENVIRONMENT:
            msg = f"function {spec.name!r} runs on Azure Functions and touches {cloud!r} buckets; glacier-azure knows no federation with {cloud!r}; it gets no credentials there, and the step will be refused at run time"
            warnings.warn(msg, UnfederatedAccessWarning, stacklevel=2)
            continue
        for setting, key in ENVIRONMENT[cloud].items():
            settings[setting] = f"${{local.{access_local(spec, cloud)}.{key}}}"
    return settings
