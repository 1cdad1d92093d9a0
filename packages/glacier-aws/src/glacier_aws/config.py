"""Configuration of the AWS provider and its Lambda executor, checked against AWS's limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["AwsConfig", "LambdaConfig", "LAMBDA_LIMITS"]

#: Lambda's service limits that a config or an artifact can break.
LAMBDA_LIMITS: dict[str, Any] = {
    "memory_mb": (128, 10_240),
    "timeout_s": (1, 900),
    "ephemeral_storage_mb": (512, 10_240),
    "unzipped_bytes": 262_144_000,  # 250 MB, code and layers together
    "direct_upload_zip_bytes": 52_428_800,  # 50 MB: larger artifacts go through S3
    "sync_payload_bytes": 6_291_456,
}

RUNTIMES = ("python3.11", "python3.12", "python3.13")


@dataclass(frozen=True)
class AwsConfig:
    """An AWS account and region.

    Credentials come from the standard AWS chain (environment, shared profile,
    instance or task role); none are stored here.

    Parameters
    ----------
    region
        The AWS region, e.g. ``"us-east-1"``.
    profile
        A named profile from the shared AWS config files.
    endpoint_url
        Send every AWS client (S3 and Lambda) to this endpoint instead,
        for S3-compatible stores and for tests.
    service_endpoints
        Per-service overrides of ``endpoint_url``, e.g.
        ``{"lambda": "http://127.0.0.1:9001"}``.
    connect_timeout
        Seconds to wait for a connection to S3 before the attempt fails.
    max_attempts
        Attempts of each S3 request, the first included (default 2: one retry, by
        s3fs/botocore and by polars alike). With an endpoint that cannot be reached,
        a step fails within seconds, naming the endpoint, instead of retrying for
        half a minute; raise it for a store that is often briefly unavailable.

    Raises
    ------
    ValueError
        When ``connect_timeout`` is not positive or ``max_attempts`` is below 1.

    Examples
    --------
    >>> AwsConfig(region="us-east-1").endpoint_for("s3") is None
    True
    >>> AwsConfig(region="eu-west-1", endpoint_url="http://127.0.0.1:5000").endpoint_for("lambda")
    'http://127.0.0.1:5000'
    """

    region: str = "us-east-1"
    profile: str | None = None
    endpoint_url: str | None = None
    service_endpoints: dict[str, str] = field(default_factory=dict)
    connect_timeout: float = 5.0
    max_attempts: int = 2

    def __post_init__(self) -> None:
        if not self.connect_timeout > 0:
            msg = f"AwsConfig: connect_timeout={self.connect_timeout!r} must be a positive number of seconds"
            raise ValueError(msg)
        if not (isinstance(self.max_attempts, int) and self.max_attempts >= 1):
            msg = f"AwsConfig: max_attempts={self.max_attempts!r} must be a whole number, at least 1"
            raise ValueError(msg)

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint for one AWS service (``"s3"``, ``"lambda"``), or ``None`` for AWS's own."""
        return self.service_endpoints.get(service) or self.endpoint_url


@dataclass(frozen=True)
class LambdaConfig:
    """How each serverless task's Lambda function is built and sized.

    Parameters
    ----------
    memory
        MB of memory (128 to 10,240); CPU grows with it.
    timeout
        Seconds an invocation may run (at most 900).
    architecture
        ``"x86_64"`` or ``"arm64"``; the artifact's wheels follow it.
    ephemeral_storage
        MB of ``/tmp`` (512 to 10,240).
    environment
        Extra environment variables for the function.
    runtime
        The Lambda Python runtime the artifact is built for.
    log_retention_days
        How long the function's CloudWatch logs are kept.
    reserved_concurrency
        Cap on concurrent executions, or ``None`` for none.

    Raises
    ------
    ValueError
        When a value is outside Lambda's limits; the message names the limit.

    Examples
    --------
    >>> LambdaConfig(memory=1024).timeout
    300
    >>> LambdaConfig(memory=20_000)
    Traceback (most recent call last):
    ...
    ValueError: LambdaConfig: memory=20000 MB is outside Lambda's limit of 128 to 10,240 MB
    """

    memory: int = 1024
    timeout: int = 300
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    ephemeral_storage: int = 512
    environment: dict[str, str] = field(default_factory=dict)
    runtime: str = "python3.12"
    log_retention_days: int = 365
    reserved_concurrency: int | None = None

    def __post_init__(self) -> None:
        checks = [
            ("memory", self.memory, LAMBDA_LIMITS["memory_mb"], "MB"),
            ("timeout", self.timeout, LAMBDA_LIMITS["timeout_s"], "s"),
            ("ephemeral_storage", self.ephemeral_storage, LAMBDA_LIMITS["ephemeral_storage_mb"], "MB"),
        ]
        for name, value, (low, high), unit in checks:
            if not low <= value <= high:
                msg = f"LambdaConfig: {name}={value} {unit} is outside Lambda's limit of {low:,} to {high:,} {unit}"
                raise ValueError(msg)
        if self.architecture not in ("x86_64", "arm64"):
            msg = f"LambdaConfig: architecture={self.architecture!r} must be 'x86_64' or 'arm64'"
            raise ValueError(msg)
        if self.runtime not in RUNTIMES:
            msg = f"LambdaConfig: runtime={self.runtime!r} is not one of {', '.join(RUNTIMES)}"
            raise ValueError(msg)

    @property
    def python_version(self) -> str:
        """The Python version of the runtime, e.g. ``"3.12"``."""
        return self.runtime.removeprefix("python")
