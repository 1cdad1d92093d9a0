"""Terraform for Google Cloud: hardened GCS buckets, and one Cloud Function (gen2) per serverless task.

``glacier_gcp.infra.terraform:generate`` is glacier-gcp's code generator (hook
``glacier_codegen_targets``). For one :class:`~glacier.infra.generate.GenerationPlan` it

- builds one source zip per runtime of the plan's functions and uploads it as an object
  of a source bucket (Cloud Functions builds the function from it);
- declares every GCS bucket the pipeline names, hardened (uniform bucket-level access,
  public access prevention enforced, versioning);
- gives each function a service account of its own, bound by IAM conditions on object
  names to exactly what its step code reads and writes (:mod:`glacier_gcp.infra.iam`);
- grants ``roles/run.invoker`` on each function to the identity that runs the pipeline
  (the variable ``gcp_invoker``), and outputs each function's URL;
- fills the deployment manifest that cloud mode reads, with each function's URL and
  the name and size of the source zip it is built from.

Every variable is prefixed ``gcp_`` (``gcp_project``, ``gcp_region``, ``gcp_invoker``),
so that one root module can hold several clouds. Checkov checks the generated code does
not satisfy are skipped *in* the generated code, each with its reason beside the block.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from glacier.infra.access import foreign_access
from glacier.infra.naming import bounded_name
from glacier.infra.terraform import Block, Ref, TerraformModule, terraform_identifier
from glacier.plugins.deployment import DeploymentEntry
from glacier.run.protocol import TASK_ENV

from glacier_gcp.config import CloudFunctionConfig, GcpConfig
from glacier_gcp.infra.federation import add_foreign_accounts, home_environment
from glacier_gcp.infra.iam import CUSTOM_ROLES, GCS_SCHEMES, bucket_bindings, literal, split_uri

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec, GenerationPlan

    from glacier_gcp.infra.artifact import Artifact

__all__ = ["GOOGLE_PROVIDER_VERSION", "generate", "add_resources", "function_url"]

#: The hashicorp/google provider versions the generated code is written for.
GOOGLE_PROVIDER_VERSION: Final = "~> 6.0"
_SOURCE_ID: Final = "glacier_source"
_SOURCE_NONCURRENT_DAYS: Final = 30
# A project ID has at most 30 characters; GCS allows 63 in a bucket name.
_SOURCE_SLUG_MAX: Final = 63 - 30 - len("-glacier--source")

_BUCKET_SKIPS: Final = {
    "CKV_GCP_62": (
        "usage and storage logs need a separate log bucket, which Glacier does not create;"
        " to audit reads and writes enable Data Access audit logs for Cloud Storage in the project"
    ),
}
_SOURCE_BUCKET_SKIPS: Final = {
    "CKV_GCP_62": (
        "holds only the function source zips Terraform uploads from `glacier generate`; which source"
        " a function was built from is in Cloud Functions' Admin Activity audit logs; no log bucket is created"
    ),
}
_FUNCTION_SKIPS: Final = {
    "CKV_GCP_124": (
        "the Glacier runner calls the function's URL from wherever the pipeline runs; every request"
        " needs an ID token of an identity holding roles/run.invoker (no allUsers binding is generated)"
    ),
}


def function_url(config: GcpConfig, region: str, name: str) -> str:
    """The HTTPS URL of a gen2 function, known before it is deployed; ``service_endpoints["functions"]`` replaces Google's host.

    Examples
    --------
    >>> function_url(GcpConfig(project="p"), "europe-west1", "etl-transform")
    'https://europe-west1-p.cloudfunctions.net/etl-transform'
    >>> function_url(GcpConfig(project="p", service_endpoints={"functions": "http://127.0.0.1:8080"}), "europe-west1", "etl-transform")
    'http://127.0.0.1:8080/etl-transform'
    """
    local = config.service_endpoints.get("functions")
    if local:
        return f"{local.rstrip('/')}/{name}"
    return f"https://{region}-{config.project}.cloudfunctions.net/{name}"


def generate(plan: GenerationPlan) -> None:
    """Build the source zips, add the Google Cloud resources and fill the manifest.

    Parameters
    ----------
    plan
        The Google Cloud share of ``mode="generate"``.

    Notes
    -----
    ``pipeline.run(mode="generate", out="infra")`` calls it for the Google Cloud share
    of a pipeline; the package's ``tests/test_terraform_gcp.py`` shows what it writes.
    """
    from glacier_gcp.infra.artifact import build_artifact

    groups: dict[str, list[FunctionSpec]] = {}
    for spec in plan.functions:
        groups.setdefault(_function_config(spec).runtime, []).append(spec)
    artifacts: dict[str, Artifact] = {}
    for runtime, specs in sorted(groups.items()):
        modules = sorted({(spec.module, spec.source_file) for spec in specs})
        artifacts[runtime] = build_artifact(modules, _function_config(specs[0]), plan.artifact_dir, functions=specs)
    add_resources(plan, artifacts)
    config, region = _gcp(plan)
    for spec in plan.functions:
        function = _function_config(spec)
        extras = {
            "url": function_url(config, region, spec.name),
            "region": region,
            "project": config.project,
            "runtime": function.runtime,
            # The source zip it is built from, and its size (the builder installs the rest).
            "source": artifacts[function.runtime].path.name,
            "source_bytes": str(artifacts[function.runtime].zipped_bytes),
            "logs": f'Cloud Logging (resource.type="cloud_run_revision" AND resource.labels.service_name="{spec.name}")',
        }
        plan.manifest[spec.task.name] = DeploymentEntry(spec.name, spec.module, spec.qualname, "gcp", spec.executor.kind, extras)


def add_resources(plan: GenerationPlan, artifacts: Mapping[str, Artifact]) -> None:
    """Add every Google Cloud block of ``plan`` to ``plan.module``.

    Parameters
    ----------
    plan
        The Google Cloud share of ``mode="generate"``.
    artifacts
        The built source zip of each runtime of the plan's functions.

    Raises
    ------
    ValueError
        When the plan spans several projects or regions, or names no project.
    KeyError
        When a function's runtime has no source zip.
    """
    module = plan.module
    project, region = _provider(module, plan)
    declared: dict[str, Ref] = {}
    for name in sorted({split_uri(b.uri)[0] for b in plan.buckets if b.uri.startswith(tuple(f"{s}://" for s in GCS_SCHEMES))}):
        declared[name] = _bucket(module, _bucket_identifier(name), literal(name), region, project, _BUCKET_SKIPS)
    specs = sorted(plan.functions, key=lambda spec: spec.name)
    pairs = foreign_access(plan.pipeline, plan.dag)
    foreign = [p for p in pairs if p.cloud == "gcp"]
    if not specs and not foreign:
        return
    roles = {
        role: module.resource(
            "google_project_iam_custom_role",
            f"glacier_{role.removeprefix('glacierObject').lower()}",
            {
                "project": project,
                "role_id": f"{role}_{_slug(plan.pipeline.name, '_')}"[:64],
                "title": f"Glacier {plan.pipeline.name} {role.removeprefix('glacierObject').lower()}"[:100],
                "description": literal(description),
                "permissions": list(permissions),
            },
        )
        for role, (permissions, description) in CUSTOM_ROLES.items()
    }
    # Functions of other clouds that touch GCS: a federated service account each (glacier_gcp.infra.federation).
    add_foreign_accounts(
        module, foreign, pipeline=plan.pipeline.name, project=project, account_id=_account_id,
        bucket=lambda name: str(declared[name].name) if name in declared else literal(name), roles=roles,
    )  # fmt: skip
    if not specs:
        return
    # Bucket names are global: the project's ID makes it this deployment's own (30 + 46 characters at most).
    slug = bounded_name(_slug(plan.pipeline.name, "-"), _SOURCE_SLUG_MAX, identity=plan.pipeline.name)
    source_bucket = _bucket(
        module, _SOURCE_ID, f"${{var.gcp_project}}-glacier-{slug}-source", region, project,
        _SOURCE_BUCKET_SKIPS, noncurrent_days=_SOURCE_NONCURRENT_DAYS,
    )
    objects: dict[str, Ref] = {}
    for runtime in sorted(artifacts):
        artifact = artifacts[runtime]
        relative = os.path.relpath(artifact.path, plan.out).replace(os.sep, "/")
        objects[runtime] = module.resource(
            "google_storage_bucket_object",
            terraform_identifier(f"source_{runtime}"),
            {
                "bucket": source_bucket.name,
                # The digest in the name: a changed source is a new object, and a new build.
                "name": literal(f"functions/{artifact.path.stem}-{artifact.sha256_hex[:16]}.zip"),
                "source": "${path.module}/" + literal(relative),
                "content_type": "application/zip",
            },
        )
    module.output("gcp_source_bucket", source_bucket.name, description="The GCS bucket holding the Cloud Functions source zips.")
    invoker = module.variable(
        "gcp_invoker",
        type="string",
        description="The identity that runs the pipeline and may invoke its functions (roles/run.invoker), e.g. user:you@example.com or serviceAccount:runner@PROJECT.iam.gserviceaccount.com.",
    )
    for spec in specs:
        config = _function_config(spec)
        if config.runtime not in objects:
            msg = f"no source zip for {config.runtime}, which function {spec.name!r} (task {spec.task.name!r}) needs; zips were built for {sorted(objects) or 'nothing'}"
            raise KeyError(msg)
        reaches = [p.cloud for p in pairs if p.home == "gcp" and p.spec.name == spec.name]
        _function(module, spec, config, objects[config.runtime], source_bucket, declared, roles, project, region, invoker, reaches)


# -- provider -----------------------------------------------------------------------


def _provider(module: TerraformModule, plan: GenerationPlan) -> tuple[Ref, Ref]:
    """The google provider for the plan's one project and region; returns ``var.gcp_project``, ``var.gcp_region``."""
    config, region = _gcp(plan)
    module.required_provider("google", "hashicorp/google", GOOGLE_PROVIDER_VERSION)
    project = module.variable("gcp_project", type="string", default=config.project, description="The Google Cloud project of the pipeline's buckets and functions.")
    region_var = module.variable("gcp_region", type="string", default=region, description="The region of the pipeline's functions and buckets.")
    module.provider(
        "google",
        project=project,
        region=region_var,
        default_labels={"glacier-pipeline": _slug(plan.pipeline.name, "-")[:63], "managed-by": "glacier"},
    )
    return project, region_var


def _gcp(plan: GenerationPlan) -> tuple[GcpConfig, str]:
    """The one GcpConfig (project and region) of the plan: functions first, then buckets."""
    configs = [spec.executor.provider.config for spec in plan.functions]
    configs += [bucket.provider_config for bucket in plan.buckets]
    found = [c for c in configs if isinstance(c, GcpConfig)]
    places = sorted({(c.project, c.region) for c in found})
    if len(places) > 1:
        listed = ", ".join(f"{p or '?'}/{r}" for p, r in places)
        msg = f"pipeline {plan.pipeline.name!r} uses Google Cloud in several projects or regions ({listed}); Glacier generates one per pipeline.\n\nUse one GcpConfig(project=..., region=...) for its buckets and Cloud Functions tasks."
        raise ValueError(msg)
    config = found[0] if found else None
    if config is None or not config.project:
        msg = f"pipeline {plan.pipeline.name!r}: generating for Google Cloud needs a project.\n\nHint: GcpConfig(project=\"my-project\")"
        raise ValueError(msg)
    return config, config.region


def _slug(name: str, sep: str) -> str:
    return re.sub(r"[^a-z0-9]+", sep, name.lower()).strip(sep) or "pipeline"


# -- buckets ------------------------------------------------------------------------


def _bucket_identifier(name: str) -> str:
    ident = terraform_identifier(name.replace("-", "_").replace(".", "_"))
    return terraform_identifier(f"bucket_{name}") if ident == _SOURCE_ID else ident


def _bucket(
    module: TerraformModule, ident: str, name: str, region: Ref, project: Ref, skips: Mapping[str, str], *, noncurrent_days: int | None = None
) -> Ref:
    """A hardened bucket: uniform access, public access prevention, versioning."""
    body: dict[str, Any] = {
        "name": name,
        "project": project,
        "location": region,
        "uniform_bucket_level_access": True,
        "public_access_prevention": "enforced",
        "versioning": Block(enabled=True),
        # Buckets hold the pipeline's data: `terraform destroy` must not delete their objects.
        "force_destroy": False,
    }
    if noncurrent_days is not None:
        body["lifecycle_rule"] = Block(
            condition=Block(days_since_noncurrent_time=noncurrent_days, with_state="ARCHIVED"),
            action=Block(type="Delete"),
        )
    bucket = module.resource("google_storage_bucket", ident, body)
    for check_id, reason in sorted(skips.items()):
        module.skip_check(bucket, check_id, reason)
    return bucket


# -- functions ----------------------------------------------------------------------


def _account_id(name: str) -> str:
    """A service account ID (6 to 30 characters, a letter first) for a function."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"glc-{name}".lower()).strip("-")
    return bounded_name(base, 30).rstrip("-").ljust(6, "0")


def _function(
    module: TerraformModule,
    spec: FunctionSpec,
    config: CloudFunctionConfig,
    source: Ref,
    source_bucket: Ref,
    declared: Mapping[str, Ref],
    roles: Mapping[str, Ref],
    project: Ref,
    region: Ref,
    invoker: Ref,
    reaches: list[str],
) -> None:
    """Service account, bucket bindings, function and invoker binding of one serverless task (``reaches``: the other clouds it touches)."""
    ident = terraform_identifier(spec.name.replace("-", "_"))
    account = module.resource(
        "google_service_account",
        ident,
        {
            "project": project,
            "account_id": _account_id(spec.name),
            "display_name": literal(bounded_name(f"Glacier {spec.name}", 100)),
            "description": literal(bounded_name(f"Glacier task {spec.task.name} ({spec.module}.{spec.qualname}) as Cloud Function {spec.name}", 256)),
        },
    )
    member = f"serviceAccount:{account.email}"
    for n, binding in enumerate(bucket_bindings(spec)):
        bucket = str(declared[binding.bucket].name) if binding.bucket in declared else literal(binding.bucket)
        module.resource(
            "google_storage_bucket_iam_member",
            f"{ident}_{n}",
            {
                "bucket": bucket,
                "role": roles[binding.role].name,
                "member": member,
                "condition": Block(
                    title=f"{binding.role.removeprefix('glacierObject').lower()}-{spec.name}"[:100],
                    description=literal(f"What Glacier task {spec.task.name} touches in {binding.bucket}"[:256]),
                    expression=literal(binding.expression),
                    comments=list(binding.notes),
                ),
            },
        )
    function = module.resource(
        "google_cloudfunctions2_function",
        ident,
        {
            "name": literal(spec.name),
            "project": project,
            "location": region,
            "description": literal(bounded_name(f"Glacier task {spec.task.name} ({spec.module}.{spec.qualname})", 256)),
            "build_config": Block(
                runtime=config.runtime,
                entry_point="handler",
                source=Block(storage_source=Block(bucket=source_bucket.name, object=source.name)),
            ),
            "service_config": Block(
                available_memory=f"{config.memory}Mi",
                available_cpu=f"{config.effective_cpu:g}",
                timeout_seconds=config.timeout,
                max_instance_count=config.max_instances,
                min_instance_count=config.min_instances,
                # One step per instance at a time: each step takes its memory and CPU.
                max_instance_request_concurrency=1,
                service_account_email=account.email,
                ingress_settings="ALLOW_ALL",
                all_traffic_on_latest_revision=True,
                environment_variables={
                    # GLACIER_TASK pins the function to its one task: the handler refuses
                    # any payload that names another (glacier.run.protocol.handle_deployed).
                    k: literal(v)
                    for k, v in sorted({**config.environment, "GLACIER_FUNCTION": spec.name, TASK_ENV: f"{spec.module}:{spec.qualname}"}.items())
                }
                # How it obtains credentials on the other clouds it touches: references, no secret.
                | home_environment(module, spec, account, reaches),
            ),
        },
    )
    for check_id, reason in sorted(_FUNCTION_SKIPS.items()):
        module.skip_check(function, check_id, reason)
    module.resource(
        "google_cloud_run_service_iam_member",
        f"{ident}_invoker",
        {"project": project, "location": region, "service": function.name, "role": "roles/run.invoker", "member": invoker},
    )
    module.output(f"{ident}_url", function.url, description=f"The URL of the Cloud Function of task {spec.task.name}.")
    module.output(f"{ident}_service_account", account.email, description=f"The service account the Cloud Function of task {spec.task.name} runs as.")


def _function_config(spec: FunctionSpec) -> CloudFunctionConfig:
    config = spec.executor.config
    if not isinstance(config, CloudFunctionConfig):
        msg = f"task {spec.task.name!r} runs on {spec.executor!r} whose config is {type(config).__name__}, not CloudFunctionConfig; the Google Cloud generator deploys Cloud Functions only"
        raise TypeError(msg)
    return config
