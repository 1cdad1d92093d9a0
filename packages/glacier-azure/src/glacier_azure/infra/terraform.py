"""Terraform for Azure (azurerm): hardened storage, and one Flex Consumption function app per serverless task.

``glacier_azure.infra.terraform:generate`` is glacier-azure's code generator (hook
``glacier_codegen_targets``). For one :class:`~glacier.infra.generate.GenerationPlan` it

- builds one artifact per Python version of the plan's functions (:mod:`glacier_azure.infra.artifact`);
- declares the resource group and every storage account the pipeline's buckets and
  functions name (TLS 1.2, HTTPS only, no public blobs, shared keys off, local users
  off, versioning, soft delete of blobs and containers, queue logging), and the
  pipeline's containers in them;
- declares the deployment's host account: the Functions host's own containers, the
  results container, one queue and one poison queue per function, and one deployment
  container per function app;
- one Flex Consumption plan, a Log Analytics workspace and Application Insights, and
  per serverless task a user-assigned identity and a function app with its memory,
  timeout, instance limit and app settings;
- the identities' role assignments, from :mod:`glacier_azure.infra.iam` (scoped to
  containers and queues, narrowed to blob paths with ABAC conditions);
- fills the deployment manifest that cloud mode reads.

Checkov checks the generated code does not satisfy are skipped *in* the generated
code, each with its reason beside the block (``# checkov:skip=ID:reason``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from glacier.infra.access import foreign_access
from glacier.infra.naming import bounded_name
from glacier.infra.terraform import Block, Ref, TerraformModule, terraform_identifier
from glacier.plugins.deployment import DeploymentEntry
from glacier.run.protocol import TASK_ENV

from glacier_azure.config import AzureConfig, AzureFunctionConfig
from glacier_azure.infra.federation import add_foreign_identities, home_environment
from glacier_azure.infra.iam import Grant, data_grants, is_azure, split_uri

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec, GenerationPlan

    from glacier_azure.infra.artifact import Artifact

__all__ = ["AZURERM_VERSION", "HOST_CONTAINERS", "RESULTS_CONTAINER", "add_resources", "app_name", "app_settings", "function_grants", "generate", "host_account_name"]

#: The hashicorp/azurerm provider versions the generated code is written for.
AZURERM_VERSION: Final = "~> 4.20"
#: The container of the step results the function apps' output bindings write.
RESULTS_CONTAINER: Final = "glacier-results"
#: The Functions host's own containers (leases, keys) in the host account.
HOST_CONTAINERS: Final = ("azure-webjobs-hosts", "azure-webjobs-secrets")
_SOFT_DELETE_DAYS: Final = 7
_RESULTS_DAYS: Final = 7

_ACCOUNT_SKIPS: Final = {
    "CKV_AZURE_35": "the function apps of Flex Consumption reach storage over its public endpoint with their managed identities (no VNet is generated); shared keys are off, so every request is authorised by Entra ID and RBAC",
    "CKV_AZURE_59": "Flex Consumption apps without VNet integration and the machine running the pipeline reach the account over its public endpoint; access is by Entra ID only",
    "CKV2_AZURE_33": "no private endpoint: Glacier generates no virtual network; add one with a VNet-integrated plan",
    "CKV2_AZURE_1": "encrypted at rest with Microsoft-managed keys; Glacier creates no Key Vault for customer-managed keys",
    "CKV_AZURE_206": "replication follows account_replication_type (LRS here, GRS for production data is a one-line change); the pipeline's outputs can be rebuilt from its sources",
}
_CONTAINER_SKIPS: Final = {
    "CKV2_AZURE_21": "read requests are logged through the account's diagnostic settings by whoever owns the subscription's logging; Glacier creates no diagnostic setting",
}
_PLAN_SKIPS: Final = {
    "CKV_AZURE_212": "a Flex Consumption plan (FC1) has no standing workers: each app scales from zero to its maximum_instance_count on its queue's length, so there is no minimum to set",
    "CKV_AZURE_225": "zone redundancy of Flex Consumption is not set on the FC1 plan; a step whose instance is lost fails its attempt, and Glacier's retries= runs it again",
}
_APP_SKIPS: Final = {
    "CKV_AZURE_221": "public network access stays on: the app has no HTTP trigger (steps arrive on its queue), and Flex Consumption apps without VNet integration need it to be reachable by the platform",
}


def generate(plan: GenerationPlan) -> None:
    """Build the artifacts, add the Azure resources and fill the manifest.

    Parameters
    ----------
    plan
        The Azure share of ``mode="generate"``.

    Examples
    --------
    ``mode="generate"`` calls it for the Azure share of a pipeline. Not run as a test:
    building the Flex Consumption zip downloads polars' wheels for the platform.

    >>> pipeline.run(mode="generate", out="infra")  # doctest: +SKIP
    """
    from glacier_azure.infra.artifact import build_artifact

    groups: dict[str, list[FunctionSpec]] = {}
    for spec in plan.functions:
        groups.setdefault(_function_config(spec).runtime, []).append(spec)
    artifacts = {
        runtime: build_artifact(sorted({(s.module, s.source_file) for s in specs}), _function_config(specs[0]), plan.artifact_dir, functions=specs)
        for runtime, specs in sorted(groups.items())
    }
    add_resources(plan, artifacts)
    if not plan.functions:
        return
    host = host_account_name(plan)
    for spec in plan.functions:
        config = _function_config(spec)
        app = app_name(spec)
        extras = {
            "queue": app,
            "results_container": RESULTS_CONTAINER,
            "queue_endpoint": f"https://{host}.queue.core.windows.net",
            "results_endpoint": f"https://{host}.blob.core.windows.net",
            "timeout": str(config.timeout),
            "logs": f"Application Insights '{_insights_name(plan)}' (traces of function app '{app}', operation Functions.glacier_step)",
        }
        plan.manifest[spec.task.name] = DeploymentEntry(app, spec.module, spec.qualname, "azure", spec.executor.kind, extras)


def app_name(spec: FunctionSpec) -> str:
    """The function app's name (and its queue's): the task's function name, at most 32 characters.

    Function app names are global (``<name>.azurewebsites.net``): a name taken by someone
    else fails at ``terraform apply``; rename the pipeline then.
    """
    return bounded_name(spec.name, 32)


def host_account_name(plan: GenerationPlan) -> str:
    """The deployment's host storage account: ``glacier`` and a hash of the pipeline and its data account (globally unique names)."""
    digest = hashlib.sha256(f"{plan.pipeline.name}|{_main_config(plan).storage_account}".encode()).hexdigest()[:14]
    return f"glacier{digest}"


def app_settings(spec: FunctionSpec, *, host_account: str, identity_client_id: str) -> dict[str, str]:
    """The app settings of ``spec``'s function app: its task, queue, results, connections and limits.

    ``identity_client_id`` is a Terraform expression (or a literal). No secret is among
    the settings: every connection is the app's user-assigned identity, and Application
    Insights' connection string goes in ``site_config``.
    """
    config = _function_config(spec)
    app = app_name(spec)
    hours, rest = divmod(config.timeout, 3600)
    settings = {
        **config.environment,
        "GLACIER_AZURE_FUNCTION": app,
        # GLACIER_TASK pins the app to its one task: the handler refuses any payload naming another.
        TASK_ENV: f"{spec.module}:{spec.qualname}",
        "GLACIER_QUEUE": app,
        "GLACIER_RESULTS_CONTAINER": RESULTS_CONTAINER,
        "GLACIER_STORAGE__queueServiceUri": f"https://{host_account}.queue.core.windows.net",
        "GLACIER_STORAGE__blobServiceUri": f"https://{host_account}.blob.core.windows.net",
        "GLACIER_STORAGE__credential": "managedidentity",
        "GLACIER_STORAGE__clientId": identity_client_id,
        "AzureWebJobsStorage__accountName": host_account,
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": identity_client_id,
        # DefaultAzureCredential (polars, adlfs) picks the app's identity by its client id.
        "AZURE_CLIENT_ID": identity_client_id,
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId={identity_client_id};Authorization=AAD",
        "AzureFunctionsJobHost__functionTimeout": f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}",
        "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": str(config.max_dequeue_count),
    }
    return dict(sorted(settings.items()))


def add_resources(plan: GenerationPlan, artifacts: Mapping[str, Artifact]) -> None:
    """Add every Azure block of ``plan`` to ``plan.module``.

    Parameters
    ----------
    plan
        The Azure share of ``mode="generate"``.
    artifacts
        The built artifact for each Python version of the plan's functions.

    Raises
    ------
    ValueError
        When the plan's configs name several locations or resource groups.
    """
    module = plan.module
    config = _main_config(plan)
    group = _provider(module, plan, config)
    accounts: dict[str, Ref] = {}
    containers: dict[tuple[str, str], Ref] = {}
    account_of: dict[str, str] = {}
    for bucket in plan.buckets:
        if not is_azure(bucket.uri):
            continue
        account = bucket.provider_config.storage_account if isinstance(bucket.provider_config, AzureConfig) else config.storage_account
        container, _ = split_uri(bucket.uri)
        account_of.setdefault(container, account)
        ref = accounts.get(account) or _account(module, accounts, account, group, data=True)
        containers.setdefault((account, container), _container(module, ref, account, container, _CONTAINER_SKIPS))
    pairs = foreign_access(plan.pipeline, plan.dag)
    # Functions of other clouds that touch Blob Storage: a federated identity each (glacier_azure.infra.federation).
    add_foreign_identities(module, [p for p in pairs if p.cloud == "azure"], group=group, account_of=account_of, container=lambda a, c: containers[a, c])
    specs = sorted(plan.functions, key=app_name)
    if not specs:
        return
    host = host_account_name(plan)
    host_ref = _account(module, accounts, host, group, data=False)
    for name in (*HOST_CONTAINERS, RESULTS_CONTAINER):
        containers[host, name] = _container(module, host_ref, host, name, {**_CONTAINER_SKIPS})
    module.resource("azurerm_storage_management_policy", terraform_identifier(f"{host}_results"), {
        "storage_account_id": host_ref.id,
        "rule": Block(name="expire-step-results", enabled=True,
                      filters=Block(blob_types=["blockBlob"], prefix_match=[f"{RESULTS_CONTAINER}/"]),
                      actions=Block(base_blob=Block(delete_after_days_since_modification_greater_than=_RESULTS_DAYS))),
    })  # fmt: skip
    workspace = module.resource("azurerm_log_analytics_workspace", "glacier", {
        "name": _insights_name(plan), "resource_group_name": group.name, "location": group.location,
        "sku": "PerGB2018", "retention_in_days": max(_function_config(s).log_retention_days for s in specs),
    })  # fmt: skip
    insights = module.resource("azurerm_application_insights", "glacier", {
        "name": _insights_name(plan), "resource_group_name": group.name, "location": group.location,
        "workspace_id": workspace.id, "application_type": "other", "local_authentication_disabled": True,
    })  # fmt: skip
    plan_ref = module.resource("azurerm_service_plan", "glacier", {
        "name": bounded_name(f"{_slug(plan)}-flex", 60), "resource_group_name": group.name, "location": group.location,
        "os_type": "Linux", "sku_name": "FC1",
    })  # fmt: skip
    for check_id, reason in sorted(_PLAN_SKIPS.items()):
        module.skip_check(plan_ref, check_id, reason)
    for spec in specs:
        reaches = [p.cloud for p in pairs if p.home == "azure" and p.spec.name == spec.name]
        _function(module, plan, spec, group, host, host_ref, containers, account_of, accounts, artifacts, plan_ref, insights, reaches)
    module.output("azure_resource_group", group.name, description="The resource group of the pipeline's resources.")
    module.output("azure_host_storage_account", host_ref.name, description="The storage account of the function apps' queues, results and packages.")


# -- provider, group, storage -----------------------------------------------------


def _provider(module: TerraformModule, plan: GenerationPlan, config: AzureConfig) -> Ref:
    module.required_provider("azurerm", "hashicorp/azurerm", AZURERM_VERSION)
    location = module.variable("azure_location", type="string", default=config.location, description="The Azure region of the pipeline's resources.")
    group_name = module.variable("azure_resource_group", type="string", default=config.resource_group or f"{_slug(plan)}-rg",
                                 description="The resource group the pipeline's resources go into.")  # fmt: skip
    provider: dict[str, Any] = {"features": Block(), "storage_use_azuread": True}
    if config.subscription_id:
        provider["subscription_id"] = module.variable("azure_subscription_id", type="string", default=config.subscription_id,
                                                      description="The subscription to deploy into.")  # fmt: skip
    module.provider("azurerm", **provider)
    return module.resource("azurerm_resource_group", "glacier", {"name": group_name, "location": location,
                                                                 "tags": {"glacier-pipeline": plan.pipeline.name, "managed-by": "glacier"}})  # fmt: skip


def _account(module: TerraformModule, accounts: dict[str, Ref], name: str, group: Ref, *, data: bool) -> Ref:
    if name in accounts:
        return accounts[name]
    ident = terraform_identifier(name)
    body: dict[str, Any] = {
        "name": name,
        "resource_group_name": group.name,
        "location": group.location,
        "account_tier": "Standard",
        "account_replication_type": "LRS",
        "account_kind": "StorageV2",
        "min_tls_version": "TLS1_2",
        "https_traffic_only_enabled": True,
        "allow_nested_items_to_be_public": False,
        "shared_access_key_enabled": False,
        "local_user_enabled": False,
        "default_to_oauth_authentication": True,
        "sas_policy": Block(expiration_period="00.01:00:00", expiration_action="Log"),
        "blob_properties": Block(
            versioning_enabled=True,
            delete_retention_policy=Block(days=_SOFT_DELETE_DAYS),
            container_delete_retention_policy=Block(days=_SOFT_DELETE_DAYS),
        ),
        "queue_properties": Block(logging=Block(delete=True, read=True, write=True, version="1.0", retention_policy_days=_SOFT_DELETE_DAYS)),
        "tags": {"glacier-role": "data" if data else "functions-host"},
    }
    ref = module.resource("azurerm_storage_account", ident, body)
    for check_id, reason in sorted(_ACCOUNT_SKIPS.items()):
        module.skip_check(ref, check_id, reason)
    accounts[name] = ref
    return ref


def _container(module: TerraformModule, account: Ref, account_name: str, name: str, skips: Mapping[str, str]) -> Ref:
    ref = module.resource("azurerm_storage_container", terraform_identifier(f"{account_name}_{name}".replace("-", "_")),
                          {"name": name, "storage_account_id": account.id, "container_access_type": "private"})  # fmt: skip
    for check_id, reason in sorted(skips.items()):
        module.skip_check(ref, check_id, reason)
    return ref


# -- functions -----------------------------------------------------------------------


def _function(
    module: TerraformModule, plan: GenerationPlan, spec: FunctionSpec, group: Ref, host: str, host_ref: Ref,
    containers: dict[tuple[str, str], Ref], account_of: dict[str, str], accounts: dict[str, Ref],
    artifacts: Mapping[str, Artifact], plan_ref: Ref, insights: Ref, reaches: list[str],
) -> None:  # fmt: skip
    config = _function_config(spec)
    app = app_name(spec)
    ident = terraform_identifier(app.replace("-", "_"))
    identity = module.resource("azurerm_user_assigned_identity", ident, {"name": f"{app}-id", "resource_group_name": group.name, "location": group.location})
    queue = module.resource("azurerm_storage_queue", ident, {"name": app, "storage_account_id": host_ref.id})
    poison = module.resource("azurerm_storage_queue", f"{ident}_poison", {"name": f"{app}-poison", "storage_account_id": host_ref.id})
    package = _container(module, host_ref, host, f"pkg-{app}", _CONTAINER_SKIPS)

    grants = function_grants(spec, host, account_of)
    refs = {("queue", host, app): queue, ("queue", host, f"{app}-poison"): poison, ("container", host, f"pkg-{app}"): package, **{("container", *k): v for k, v in containers.items()}}
    for i, grant in enumerate(grants):
        body: dict[str, Any] = {
            "scope": refs[grant.scope].resource_manager_id,
            "role_definition_name": grant.role,
            "principal_id": identity.principal_id,
            "principal_type": "ServicePrincipal",
            "description": f"Glacier task {spec.task.name}: {grant.role} on {grant.scope[0]} {grant.scope[2]}",
        }
        if grant.condition:
            body["condition"] = grant.condition
            body["condition_version"] = "2.0"
        module.resource("azurerm_role_assignment", f"{ident}_{i:02d}", body)
    module.resource("azurerm_role_assignment", f"{ident}_insights", {
        "scope": insights.id, "role_definition_name": "Monitoring Metrics Publisher",
        "principal_id": identity.principal_id, "principal_type": "ServicePrincipal",
        "description": f"Glacier task {spec.task.name}: sends its logs to Application Insights with its identity",
    })  # fmt: skip

    artifact = artifacts[config.runtime]
    relative = os.path.relpath(artifact.path, plan.out).replace(os.sep, "/")
    function = module.resource("azurerm_function_app_flex_consumption", ident, {
        "name": app,
        "resource_group_name": group.name,
        "location": group.location,
        "service_plan_id": plan_ref.id,
        "runtime_name": "python",
        "runtime_version": config.runtime,
        "instance_memory_in_mb": config.memory,
        "maximum_instance_count": config.max_instances,
        "storage_container_type": "blobContainer",
        "storage_container_endpoint": f"{host_ref.primary_blob_endpoint}{package.name}",
        "storage_authentication_type": "UserAssignedIdentity",
        "storage_user_assigned_identity_id": identity.id,
        "zip_deploy_file": "${path.module}/" + relative,
        "https_only": True,
        "client_certificate_enabled": True,
        "client_certificate_mode": "Required",
        "identity": Block(type="UserAssigned", identity_ids=[identity.id]),
        "site_config": Block(application_insights_connection_string=insights.connection_string, http2_enabled=True, minimum_tls_version="1.2"),
        # With how it obtains credentials on the other clouds it touches: references, no secret.
        "app_settings": app_settings(spec, host_account=host, identity_client_id=str(identity.client_id)) | home_environment(module, spec, identity, reaches),
        "tags": {"glacier-task": spec.task.name, "glacier-artifact-sha256": artifact.sha256_base64},
    })  # fmt: skip
    for check_id, reason in sorted(_APP_SKIPS.items()):
        module.skip_check(function, check_id, reason)
    module.output(f"{ident}_function_app", function.name, description=f"The function app of task {spec.task.name}.")
    module.output(f"{ident}_principal_id", identity.principal_id, description=f"The identity of task {spec.task.name}'s function app.")


def function_grants(spec: FunctionSpec, host: str, account_of: dict[str, str]) -> list[Grant]:
    """Every role assignment of ``spec``'s identity (see :mod:`glacier_azure.infra.iam`)."""
    app = app_name(spec)
    steps = sorted({step.name for step in spec.steps})
    results = " OR ".join(f"@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike '*/{s}/*'" for s in steps)
    blob = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
    results_condition = (
        f"((!(ActionMatches{{'{blob}/write'}}) AND !(ActionMatches{{'{blob}/add/action'}})) OR ({results}))"
        f"\nAND (!(ActionMatches{{'{blob}/read'}}))\nAND (!(ActionMatches{{'{blob}/delete'}}))"
    )
    return [
        *data_grants(spec, account_of),
        Grant(("queue", host, app), "Storage Queue Data Reader"),
        Grant(("queue", host, app), "Storage Queue Data Message Processor"),
        Grant(("queue", host, f"{app}-poison"), "Storage Queue Data Message Sender"),
        Grant(("container", host, RESULTS_CONTAINER), "Storage Blob Data Contributor", results_condition),
        *(Grant(("container", host, name), "Storage Blob Data Owner") for name in HOST_CONTAINERS),
        Grant(("container", host, f"pkg-{app}"), "Storage Blob Data Contributor"),
    ]


# -- helpers -------------------------------------------------------------------------


def _slug(plan: GenerationPlan) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", plan.pipeline.name.lower()).strip("-") or "pipeline"


def _insights_name(plan: GenerationPlan) -> str:
    return bounded_name(f"{_slug(plan)}-glacier", 60)


def _main_config(plan: GenerationPlan) -> AzureConfig:
    configs = [spec.executor.provider.config for spec in plan.functions] + [b.provider_config for b in plan.buckets]
    azure = [c for c in configs if isinstance(c, AzureConfig)]
    for what in ("location", "resource_group"):
        values = sorted({str(getattr(c, what)) for c in azure})
        if len(values) > 1:
            msg = (f"pipeline {plan.pipeline.name!r} uses Azure with several {what}s ({', '.join(values)}); "
                   f"Glacier generates one per pipeline.\n\nUse one AzureConfig({what}=...) for its buckets and functions.")  # fmt: skip
            raise ValueError(msg)
    if not azure:
        msg = f"pipeline {plan.pipeline.name!r} has Azure buckets or functions but no AzureConfig to name their storage account"
        raise ValueError(msg)
    return azure[0]


def _function_config(spec: FunctionSpec) -> AzureFunctionConfig:
    config = spec.executor.config
    if not isinstance(config, AzureFunctionConfig):
        msg = (f"task {spec.task.name!r} runs on {spec.executor!r} whose config is {type(config).__name__}, "
               "not AzureFunctionConfig; the Azure generator deploys Azure Functions only")  # fmt: skip
        raise TypeError(msg)
    return config
