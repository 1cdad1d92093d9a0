"""Terraform for AWS: hardened S3 buckets, and one Lambda function per serverless task.

``glacier_aws.infra.terraform:generate`` is glacier-aws's code generator (hook
``glacier_codegen_targets``). For one :class:`~glacier.infra.generate.GenerationPlan` it

- builds one Lambda artifact per distinct (runtime, architecture) of the plan's
  functions, and uploads each through an artifacts bucket: polars' runtime alone is
  over Lambda's 50 MB limit for a direct upload;
- declares every S3 bucket the pipeline names, hardened (no public access, SSE-KMS,
  versioning, ACLs off, incomplete multipart uploads aborted);
- gives each function its log group, its role and an inline policy that allows
  exactly what the step code does on S3, and nothing on another step's data;
- fills the deployment manifest that cloud mode reads.

Checkov checks the generated code does not satisfy are skipped *in* the generated
code, each with its reason beside the block (``# checkov:skip=ID:reason``).

Roles are built by :mod:`glacier_aws.infra.iam` (what the step code does on S3, and so
what each role allows).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from glacier.infra.access import foreign_access
from glacier.run.protocol import TASK_ENV
from glacier.infra.naming import bounded_name
from glacier.infra.terraform import Block, Ref, TerraformModule, terraform_identifier
from glacier.plugins.deployment import DeploymentEntry

from glacier_aws.config import AwsConfig, LambdaConfig
from glacier_aws.infra.federation import add_foreign_roles, home_environment, home_secrets
from glacier_aws.infra.iam import is_s3, literal, role_statements, split_uri

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec, GenerationPlan

    from glacier_aws.infra.artifact import Artifact

__all__ = ["AWS_PROVIDER_VERSION", "HANDLER", "add_resources", "generate"]

#: The hashicorp/aws provider versions the generated code is written for.
AWS_PROVIDER_VERSION: Final = "~> 5.0"
#: The Lambda handler inside every artifact.
HANDLER: Final = "glacier_aws.handler.handler"
#: CloudWatch Logs accepts only these retention periods (days; 0 keeps logs forever).
# fmt: off
LOG_RETENTION_DAYS: Final = frozenset({
    0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
})
# fmt: on
#: checkov's CKV_AWS_338 wants logs kept for at least a year.
_CHECKOV_LOG_RETENTION_DAYS: Final = 365
_ARTIFACTS_ID: Final = "glacier_artifacts"
_MULTIPART_ABORT_DAYS: Final = 7
_ARTIFACT_NONCURRENT_DAYS: Final = 30
# The account id (12 digits) and the longest region name (14) end the artifacts
# bucket's name; S3 allows 63 characters in all.
_ARTIFACTS_SLUG_MAX: Final = 63 - len("glacier--artifacts--") - 12 - 14

_DATA_BUCKET_SKIPS: Final = {
    "CKV_AWS_18": (
        "server access logging needs a separate log bucket, which Glacier does not"
        " create; to audit reads and writes enable access logging to your log bucket"
        " or CloudTrail S3 data events for the account"
    ),
    "CKV_AWS_144": (
        "cross-region replication needs a bucket in a second region and a replication"
        " role, which Glacier does not create; versioning is on, so a replication"
        " configuration can be added"
    ),
    "CKV2_AWS_62": (
        "Glacier runs steps by invoking their functions directly; nothing consumes"
        " S3 event notifications from this bucket"
    ),
}
_ARTIFACT_BUCKET_SKIPS: Final = {
    "CKV_AWS_18": (
        "holds only the Lambda artifacts Terraform uploads from `glacier generate`;"
        " which artifact a function runs is recorded by Lambda's CreateFunction and"
        " UpdateFunctionCode management events in CloudTrail; no log bucket is created"
    ),
    "CKV_AWS_144": (
        "the artifacts are rebuilt by `glacier generate` and live in the functions'"
        " own region (Lambda reads code from the same region only): a replica in"
        " another region would not be usable"
    ),
    "CKV2_AWS_62": "nothing reacts to uploads of artifacts; Terraform deploys them",
}
_LOG_GROUP_KMS_REASON: Final = (
    "CloudWatch Logs encrypts log data at rest with its service-managed key; Glacier"
    " creates no customer-managed KMS key (one needs a key policy for"
    " logs.<region>.amazonaws.com before kms_key_id can be set)"
)
_FUNCTION_SKIPS: Final = {
    "CKV_AWS_116": (
        "the Glacier runner invokes the function synchronously (RequestResponse) and"
        " gets every error back, and retries itself; a dead-letter queue only applies"
        " to asynchronous invocations"
    ),
    "CKV_AWS_117": (
        "the function only calls S3, CloudWatch Logs and X-Ray through their public"
        " AWS endpoints and needs no VPC resource; in a VPC it would need NAT or VPC"
        " endpoints to reach S3"
    ),
    "CKV_AWS_272": (
        "Glacier does not sign artifacts; to require signed code, sign the artifact"
        " with an aws_signer_signing_profile and set code_signing_config_arn to an"
        " aws_lambda_code_signing_config"
    ),
    "CKV_AWS_173": (
        "the environment holds GLACIER_FUNCTION, GLACIER_TASK, LambdaConfig.environment and, for"
        " another cloud's buckets, a keyless federation config (GLACIER_GCP_CREDENTIAL_CONFIG) or the"
        " ARN of a Secrets Manager secret (GLACIER_AZURE_CLIENT_SECRET_ARN, not its value), no"
        " secrets (keep secrets out of LambdaConfig.environment); Lambda encrypts it"
        " at rest with its AWS-managed key"
    ),
}


def generate(plan: GenerationPlan) -> None:
    """Build the Lambda artifacts, add the AWS resources and fill the manifest.

    One artifact is built per distinct (runtime, architecture) of the plan's
    functions, holding the modules of every task that runs on it.

    Parameters
    ----------
    plan
        The AWS share of ``mode="generate"``.

    Examples
    --------
    ``mode="generate"`` calls it for the AWS share of a pipeline. Not run as a test:
    building the Lambda artifact downloads polars' wheels for the platform.

    >>> pipeline.run(mode="generate", out="infra")  # doctest: +SKIP
    """
    from glacier_aws.infra.artifact import build_artifact

    groups: dict[tuple[str, str], list[FunctionSpec]] = {}
    for spec in plan.functions:
        config = _lambda_config(spec)
        groups.setdefault((config.runtime, config.architecture), []).append(spec)
    artifacts: dict[tuple[str, str], Artifact] = {}
    for (runtime, architecture), specs in sorted(groups.items()):
        modules = sorted({(spec.module, spec.source_file) for spec in specs})
        # Written as artifacts/glacier-lambda-{runtime}-{architecture}.zip.
        artifacts[runtime, architecture] = build_artifact(
            modules, _lambda_config(specs[0]), plan.artifact_dir, functions=specs
        )
    add_resources(plan, artifacts)
    region = _region(plan)
    for spec in plan.functions:
        config = _lambda_config(spec)
        extras = {"region": region, "runtime": config.runtime, "architecture": config.architecture, "logs": f"CloudWatch (/aws/lambda/{spec.name})"}
        plan.manifest[spec.task.name] = DeploymentEntry(spec.name, spec.module, spec.qualname, "aws", spec.executor.kind, extras)


def add_resources(plan: GenerationPlan, artifacts: Mapping[tuple[str, str], Artifact]) -> None:
    """Add every AWS block of ``plan`` to ``plan.module``.

    Parameters
    ----------
    plan
        The AWS share of ``mode="generate"``.
    artifacts
        The built artifact for each (runtime, architecture) of the plan's functions;
        only ``path`` (inside ``plan.out``) and ``sha256_base64`` are used.

    Raises
    ------
    ValueError
        When the plan spans several regions, or a function's log retention is not
        one CloudWatch Logs accepts.
    KeyError
        When a function's (runtime, architecture) has no artifact.

    Notes
    -----
    :func:`generate` calls it once the artifacts are built, as
    ``add_resources(plan, {("python3.12", "x86_64"): artifact})``; the package's
    ``tests/test_terraform_aws.py`` calls it with a small stand-in artifact.
    """
    module = plan.module
    region = _provider(module, plan)
    buckets = _Buckets(module)
    for name in sorted({split_uri(b)[0] for b in plan.buckets if is_s3(b)}):
        buckets.add(name, skips=_DATA_BUCKET_SKIPS)
    pairs = foreign_access(plan.pipeline, plan.dag)
    # Functions of other clouds that touch S3: a federated role each (glacier_aws.infra.federation).
    add_foreign_roles(module, [p for p in pairs if p.cloud == "aws"], buckets.arn)
    specs = sorted(plan.functions, key=lambda spec: spec.name)
    if not specs:
        return
    objects = _artifacts(module, plan, buckets, artifacts, region)
    for spec in specs:
        config = _lambda_config(spec)
        key = (config.runtime, config.architecture)
        if key not in objects:
            msg = (
                f"no Lambda artifact for {key[0]} on {key[1]}, which function"
                f" {spec.name!r} (task {spec.task.name!r}) needs; artifacts were built"
                f" for {sorted(objects) or 'nothing'}"
            )
            raise KeyError(msg)
        reaches = [p.cloud for p in pairs if p.home == "aws" and p.spec.name == spec.name]
        _function(module, spec, config, buckets, objects[key], reaches)


# -- provider -----------------------------------------------------------------------


def _provider(module: TerraformModule, plan: GenerationPlan) -> Ref:
    """The aws provider for the plan's one region; returns ``var.aws_region``."""
    module.required_provider("aws", "hashicorp/aws", AWS_PROVIDER_VERSION)
    region = module.variable(
        "aws_region",
        type="string",
        default=_region(plan),
        description="The AWS region of the pipeline's buckets and functions.",
    )
    module.provider(
        "aws",
        region=region,
        default_tags=Block(
            tags={"glacier:pipeline": literal(plan.pipeline.name), "managed-by": "glacier"}
        ),
    )
    return region


def _region(plan: GenerationPlan) -> str:
    """The one region of the plan's AWS configs (functions first, then buckets)."""
    configs = [spec.executor.provider.config for spec in plan.functions]
    configs += [bucket.provider_config for bucket in plan.buckets]
    regions = sorted({c.region for c in configs if isinstance(c, AwsConfig)})
    if len(regions) > 1:
        msg = (
            f"pipeline {plan.pipeline.name!r} uses AWS in several regions"
            f" ({', '.join(regions)}); Glacier generates one region per pipeline.\n\n"
            "Use one AwsConfig(region=...) for its buckets and Lambda tasks."
        )
        raise ValueError(msg)
    return regions[0] if regions else AwsConfig().region


# -- buckets ------------------------------------------------------------------------


@dataclass
class _Buckets:
    """The S3 buckets of the module: declared ones by name, and ARNs for any bucket."""

    module: TerraformModule
    declared: dict[str, Ref] = field(default_factory=dict)

    def add(
        self,
        name: str,
        *,
        skips: Mapping[str, str],
        ident: str | None = None,
        bucket_name: str | None = None,
        noncurrent_days: int | None = None,
    ) -> Ref:
        """Declare a hardened bucket (once) and return it."""
        if name in self.declared:
            return self.declared[name]
        ident = ident or _bucket_identifier(name)
        module = self.module
        bucket = module.resource("aws_s3_bucket", ident, {"bucket": bucket_name or literal(name)})
        for check_id, reason in sorted(skips.items()):
            module.skip_check(bucket, check_id, reason)
        module.resource(
            "aws_s3_bucket_public_access_block",
            ident,
            {
                "bucket": bucket.id,
                "block_public_acls": True,
                "block_public_policy": True,
                "ignore_public_acls": True,
                "restrict_public_buckets": True,
            },
        )
        module.resource(
            "aws_s3_bucket_ownership_controls",
            ident,
            {"bucket": bucket.id, "rule": Block(object_ownership="BucketOwnerEnforced")},
        )
        module.resource(
            "aws_s3_bucket_server_side_encryption_configuration",
            ident,
            {
                "bucket": bucket.id,
                "rule": Block(
                    # No kms_master_key_id: the AWS-managed key aws/s3, which every
                    # principal of the account may use through S3 (no kms:* grants).
                    apply_server_side_encryption_by_default=Block(sse_algorithm="aws:kms"),
                    bucket_key_enabled=True,
                ),
            },
        )
        module.resource(
            "aws_s3_bucket_versioning",
            ident,
            {"bucket": bucket.id, "versioning_configuration": Block(status="Enabled")},
        )
        rules = [
            Block(
                id="abort-incomplete-multipart-uploads",
                status="Enabled",
                filter=Block(),
                abort_incomplete_multipart_upload=Block(
                    days_after_initiation=_MULTIPART_ABORT_DAYS
                ),
            )
        ]
        if noncurrent_days is not None:
            rules.append(
                Block(
                    id="expire-noncurrent-versions",
                    status="Enabled",
                    filter=Block(),
                    noncurrent_version_expiration=Block(noncurrent_days=noncurrent_days),
                )
            )
        module.resource(
            "aws_s3_bucket_lifecycle_configuration",
            ident,
            {"bucket": bucket.id, "rule": rules},
        )
        self.declared[name] = bucket
        return bucket

    def arn(self, name: str) -> str:
        """The ARN of a bucket: a reference when declared here, else a literal ARN."""
        if name in self.declared:
            return str(self.declared[name].arn)
        partition = self.module.data("aws_partition", "current", {}).partition
        return f"arn:{partition}:s3:::{literal(name)}"


def _bucket_identifier(name: str) -> str:
    # S3 names hold no "_", so "-" -> "_" keeps different names apart; a name with
    # dots gets terraform_identifier's hash suffix.
    ident = terraform_identifier(name.replace("-", "_"))
    return terraform_identifier(name) if ident == _ARTIFACTS_ID else ident


def _artifacts_bucket(
    module: TerraformModule, plan: GenerationPlan, buckets: _Buckets, region: Ref
) -> Ref:
    """The bucket the artifacts are uploaded to, from the option or the pipeline."""
    chosen = plan.options.get("artifact_bucket")
    if chosen:
        return buckets.add(
            str(chosen),
            skips=_ARTIFACT_BUCKET_SKIPS,
            ident=_ARTIFACTS_ID,
            noncurrent_days=_ARTIFACT_NONCURRENT_DAYS,
        )
    # Bucket names are global across all AWS accounts: the account and the region
    # make the name this deployment's own.
    account = module.data("aws_caller_identity", "current", {}).account_id
    slug = re.sub(r"[^a-z0-9]+", "-", plan.pipeline.name.lower()).strip("-") or "pipeline"
    slug = bounded_name(slug, _ARTIFACTS_SLUG_MAX, identity=plan.pipeline.name)
    return buckets.add(
        f"glacier-{slug}-artifacts",
        skips=_ARTIFACT_BUCKET_SKIPS,
        ident=_ARTIFACTS_ID,
        bucket_name=f"glacier-{slug}-artifacts-{account}-{region}",
        noncurrent_days=_ARTIFACT_NONCURRENT_DAYS,
    )


def _artifacts(
    module: TerraformModule,
    plan: GenerationPlan,
    buckets: _Buckets,
    artifacts: Mapping[tuple[str, str], Artifact],
    region: Ref,
) -> dict[tuple[str, str], tuple[Ref, str]]:
    """One ``aws_s3_object`` per artifact; returns (object, code hash) by key."""
    bucket = _artifacts_bucket(module, plan, buckets, region)
    bucket_ident = bucket.traversal.split(".", 1)[1]
    objects: dict[tuple[str, str], tuple[Ref, str]] = {}
    for key in sorted(artifacts):
        artifact = artifacts[key]
        relative = os.path.relpath(artifact.path, plan.out).replace(os.sep, "/")
        obj = module.resource(
            "aws_s3_object",
            terraform_identifier(f"artifact_{key[0]}_{key[1]}".replace(".", "")),
            {
                "bucket": bucket.id,
                "key": literal(f"lambda/{os.path.basename(artifact.path)}"),
                "source": "${path.module}/" + literal(relative),
                # The sha256 of the zip; etag is no content hash under SSE-KMS.
                "source_hash": artifact.sha256_base64,
                "content_type": "application/zip",
                # Uploaded once encryption and versioning are on (version_id is used).
                "depends_on": [
                    Ref(f"aws_s3_bucket_server_side_encryption_configuration.{bucket_ident}"),
                    Ref(f"aws_s3_bucket_versioning.{bucket_ident}"),
                ],
            },
        )
        objects[key] = (obj, artifact.sha256_base64)
    module.output(
        "aws_artifacts_bucket",
        bucket.bucket,
        description="The S3 bucket holding the Lambda artifacts.",
    )
    return objects


# -- functions ----------------------------------------------------------------------


def _function(
    module: TerraformModule,
    spec: FunctionSpec,
    config: LambdaConfig,
    buckets: _Buckets,
    artifact: tuple[Ref, str],
    reaches: list[str],
) -> None:
    """Log group, role, policy and function of one serverless task (``reaches``: the other clouds it touches)."""
    ident = terraform_identifier(spec.name.replace("-", "_"))
    if config.log_retention_days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in sorted(LOG_RETENTION_DAYS))
        msg = (
            f"LambdaConfig.log_retention_days={config.log_retention_days} of task"
            f" {spec.task.name!r} is not a retention CloudWatch Logs accepts.\n\n"
            f"Use one of: {allowed}."
        )
        raise ValueError(msg)
    logs = module.resource(
        "aws_cloudwatch_log_group",
        ident,
        {
            "name": literal(f"/aws/lambda/{spec.name}"),
            "retention_in_days": config.log_retention_days,
        },
    )
    module.skip_check(logs, "CKV_AWS_158", _LOG_GROUP_KMS_REASON)
    if 0 < config.log_retention_days < _CHECKOV_LOG_RETENTION_DAYS:
        module.skip_check(
            logs,
            "CKV_AWS_338",
            f"retention set by LambdaConfig.log_retention_days={config.log_retention_days}",
        )

    trust = module.data(
        "aws_iam_policy_document",
        f"{ident}_assume_role",
        {
            "statement": Block(
                sid="LambdaAssumesRole",
                effect="Allow",
                actions=["sts:AssumeRole"],
                principals=Block(type="Service", identifiers=["lambda.amazonaws.com"]),
            )
        },
    )
    role = module.resource(
        "aws_iam_role",
        ident,
        {
            "name": literal(bounded_name(f"{spec.name}-lambda", 64)),
            "description": literal(f"Glacier task {spec.task.name} as Lambda {spec.name}"),
            "assume_role_policy": trust.json,
        },
    )
    access = module.data(
        "aws_iam_policy_document", ident, {"statement": role_statements(spec, buckets.arn, f"{logs.arn}") + home_secrets(module, spec, reaches)}
    )
    policy = module.resource(
        "aws_iam_role_policy",
        ident,
        {"name": "glacier-step-access", "role": role.id, "policy": access.json},
    )

    code, code_hash = artifact
    body: dict[str, Any] = {
        "function_name": literal(spec.name),
        "description": literal(
            bounded_name(f"Glacier task {spec.task.name} ({spec.module}.{spec.qualname})", 256)
        ),
        "role": role.arn,
        "handler": HANDLER,
        "runtime": config.runtime,
        "architectures": [config.architecture],
        "memory_size": config.memory,
        "timeout": config.timeout,
        "ephemeral_storage": Block(size=config.ephemeral_storage),
        "s3_bucket": code.bucket,
        "s3_key": code.key,
        "s3_object_version": code.version_id,
        "source_code_hash": code_hash,
        "environment": Block(
            variables={
                k: literal(v)
                # GLACIER_TASK pins the function to its one task: the handler refuses
                # any payload that names another (glacier.run.protocol.handle_deployed).
                for k, v in sorted({**config.environment, "GLACIER_FUNCTION": spec.name, TASK_ENV: f"{spec.module}:{spec.qualname}"}.items())
            }
            # How it obtains credentials on the other clouds it touches: references, no secret.
            | home_environment(module, spec, role, reaches)
        ),
        "tracing_config": Block(mode="Active"),
        # The log group is Terraform's (with its retention), not Lambda's own, and
        # the role can write to it before the first invocation.
        "depends_on": [logs, policy],
    }
    if config.reserved_concurrency is not None:
        body["reserved_concurrent_executions"] = config.reserved_concurrency
    function = module.resource("aws_lambda_function", ident, body)
    for check_id, reason in sorted(_FUNCTION_SKIPS.items()):
        module.skip_check(function, check_id, reason)
    if config.reserved_concurrency is None:
        module.skip_check(
            function,
            "CKV_AWS_115",
            "concurrency is not capped because LambdaConfig.reserved_concurrency is None;"
            " set it to reserve and cap concurrent executions",
        )
    module.output(
        f"{ident}_function_name",
        function.function_name,
        description=f"The Lambda function of task {spec.task.name}.",
    )
    module.output(
        f"{ident}_function_arn",
        function.arn,
        description=f"The ARN of the Lambda function of task {spec.task.name}.",
    )


def _lambda_config(spec: FunctionSpec) -> LambdaConfig:
    config = spec.executor.config
    if not isinstance(config, LambdaConfig):
        msg = (
            f"task {spec.task.name!r} runs on {spec.executor!r} whose config is"
            f" {type(config).__name__}, not LambdaConfig; the AWS generator deploys"
            " Lambda functions only"
        )
        raise TypeError(msg)
    return config
