"""glacier-aws's plugin module (entry point ``glacier: aws``). Light: no boto3 or s3fs here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glacier import hookimpl
from glacier.plugins.backend import ProviderBackend
from glacier.plugins.registry import CodegenTarget, ExecutorKind, Scheme

from glacier_aws.config import AwsConfig, LambdaConfig

if TYPE_CHECKING:
    from collections.abc import MutableMapping

#: What a function on another cloud needs to use ``s3://``: s3fs (with aiobotocore and botocore).
FUNCTION_REQUIREMENTS = ("s3fs",)


@hookimpl
def glacier_configs() -> list[type]:
    """``AwsConfig`` and ``LambdaConfig``."""
    return [AwsConfig, LambdaConfig]


@hookimpl
def glacier_provider_for_config(config: Any) -> ProviderBackend | None:
    """The AWS provider for an ``AwsConfig``."""
    if isinstance(config, AwsConfig):
        from glacier_aws.backend import AwsBackend

        return AwsBackend(config)
    return None


@hookimpl
def glacier_storage_schemes() -> list[Scheme]:
    """``s3://`` (and ``s3a://``, as Spark writes it); a function of another cloud that touches it carries s3fs."""
    return [
        Scheme(name, "glacier_aws.storage:S3Storage", package="glacier-aws", provider="aws", function_requirements=FUNCTION_REQUIREMENTS)
        for name in ("s3", "s3a")
    ]


@hookimpl
def glacier_executor_kinds() -> list[ExecutorKind]:
    """The Lambda executor, chosen by ``LambdaConfig``."""
    return [ExecutorKind("lambda", "glacier_aws.executor:LambdaExecutor", config="glacier_aws.config:LambdaConfig", provider="aws")]


@hookimpl
def glacier_codegen_targets() -> list[CodegenTarget]:
    """Terraform for S3 buckets, Lambda functions, IAM roles and log groups."""
    return [CodegenTarget("terraform-aws", "aws", "glacier_aws.infra.terraform:generate")]


@hookimpl
def glacier_configure_credentials(environ: MutableMapping[str, str]) -> None:
    """A web identity token file for ``AWS_ROLE_ARN`` (a function of another cloud), and Lambda's secrets from Secrets Manager."""
    from glacier_aws.identity import configure_credentials

    configure_credentials(environ)
