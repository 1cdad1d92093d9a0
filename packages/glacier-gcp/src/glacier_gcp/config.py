"""Configuration of the Google Cloud provider and its Cloud Functions (gen2) executor, checked against Google's limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["GcpConfig", "CloudFunctionConfig", "CLOUD_FUNCTION_LIMITS", "RUNTIMES", "min_cpu_for"]

#: The limits of Cloud Functions gen2 (Cloud Run functions) that a config can break.
CLOUD_FUNCTION_LIMITS: dict[str, Any] = {
    "memory_mb": (128, 32_768),  # 128 MB to 32 GiB
    "timeout_s": (1, 3_600),  # an HTTP function answers within 60 minutes
    "cpu": (0.083, 8.0),
    # CPUs above 1 come in these steps only
    "whole_cpus": (1.0, 2.0, 4.0, 6.0, 8.0),
    "max_instances": (1, 1_000),
}

#: (memory above this many MB, needs at least this many CPUs): Cloud Run's rule.
_CPU_FOR_MEMORY: tuple[tuple[int, float], ...] = ((24_576, 8.0), (16_384, 6.0), (8_192, 4.0), (4_096, 2.0), (1_024, 1.0), (512, 0.5))

RUNTIMES = ("python310", "python311", "python312", "python313")


def min_cpu_for(memory: int) -> float:
    """The fewest CPUs a gen2 function with ``memory`` MB may have.

    Examples
    --------
    >>> min_cpu_for(256), min_cpu_for(4096), min_cpu_for(4097), min_cpu_for(32_768)
    (0.083, 1.0, 2.0, 8.0)
    """
    for above, cpus in _CPU_FOR_MEMORY:
        if memory > above:
            return cpus
    return float(CLOUD_FUNCTION_LIMITS["cpu"][0])


@dataclass(frozen=True)
class GcpConfig:
    """A Google Cloud project and region.

    Credentials come from Google's Application Default Credentials chain
    (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``,
    the metadata server of the machine); none are stored here, in a payload or in a
    record.

    Parameters
    ----------
    project
        The project ID, e.g. ``"my-project"`` (``generate`` needs it; storage alone does not).
    region
        The region of the functions (and of buckets generate creates).
    endpoint_url
        Send storage to this endpoint instead of Google's (an emulator such as
        fake-gcs-server, or a private endpoint). ``STORAGE_EMULATOR_HOST`` is honoured
        too, as Google's own libraries honour it. With an endpoint and no credentials
        in the chain, access is anonymous and the metadata server is never asked.
    service_endpoints
        Per-service overrides of ``endpoint_url``: ``{"storage": "http://127.0.0.1:4443"}``.

    Examples
    --------
    >>> GcpConfig(project="p").endpoint_for("storage") is None
    True
    >>> GcpConfig(project="p", endpoint_url="http://127.0.0.1:4443").endpoint_for("storage")
    'http://127.0.0.1:4443'
    """

    project: str
    region: str = "us-central1"
    endpoint_url: str | None = None
    service_endpoints: dict[str, str] = field(default_factory=dict)

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint of one service (``"storage"``), or ``None`` for Google's own."""
        return self.service_endpoints.get(service) or self.endpoint_url


@dataclass(frozen=True)
class CloudFunctionConfig:
    """How each serverless task's Cloud Function (gen2) is built and sized.

    Parameters
    ----------
    memory
        MB of memory, 128 to 32,768 (32 GiB).
    cpu
        CPUs of each instance, or ``None`` for the fewest the memory requires
        (more than 4 GiB needs 2, more than 8 GiB 4, more than 16 GiB 6, more than
        24 GiB 8). Below 1 any fraction from 0.083; above 1 only 2, 4, 6 or 8.
    timeout
        Seconds a request may run, at most 3,600 (an HTTP function's limit).
    max_instances
        The most instances that run at once.
    min_instances
        Instances kept warm (billed while idle).
    runtime
        The Python runtime the function is built with (``"python312"``).
    environment
        Extra environment variables for the function.

    Raises
    ------
    ValueError
        When a value breaks a limit of gen2 functions; the message names the field and the limit.

    Examples
    --------
    >>> CloudFunctionConfig(memory=4096).effective_cpu
    1.0
    >>> CloudFunctionConfig(memory=40_000)
    Traceback (most recent call last):
    ...
    ValueError: CloudFunctionConfig: memory=40000 MB is outside Cloud Functions' limit of 128 to 32,768 MB
    """

    memory: int = 1024
    cpu: float | None = None
    timeout: int = 300
    max_instances: int = 100
    min_instances: int = 0
    runtime: str = "python312"
    environment: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            ("memory", self.memory, CLOUD_FUNCTION_LIMITS["memory_mb"], "MB"),
            ("timeout", self.timeout, CLOUD_FUNCTION_LIMITS["timeout_s"], "s"),
            ("max_instances", self.max_instances, CLOUD_FUNCTION_LIMITS["max_instances"], "instances"),
        ]
        for name, value, (low, high), unit in checks:
            if not low <= value <= high:
                msg = f"CloudFunctionConfig: {name}={value} {unit} is outside Cloud Functions' limit of {low:,} to {high:,} {unit}"
                raise ValueError(msg)
        if not 0 <= self.min_instances <= self.max_instances:
            msg = f"CloudFunctionConfig: min_instances={self.min_instances} must be between 0 and max_instances={self.max_instances}"
            raise ValueError(msg)
        if self.cpu is not None:
            low, high = CLOUD_FUNCTION_LIMITS["cpu"]
            if not low <= self.cpu <= high or (self.cpu > 1 and self.cpu not in CLOUD_FUNCTION_LIMITS["whole_cpus"]):
                msg = f"CloudFunctionConfig: cpu={self.cpu:g} is not a CPU count Cloud Functions offers: {low} to 1, or 2, 4, 6 or 8"
                raise ValueError(msg)
            needed = min_cpu_for(self.memory)
            if self.cpu < needed:
                msg = f"CloudFunctionConfig: cpu={self.cpu:g} is too few for memory={self.memory} MB: Cloud Functions requires at least {needed:g} CPUs for it"
                raise ValueError(msg)
        if self.runtime not in RUNTIMES:
            msg = f"CloudFunctionConfig: runtime={self.runtime!r} is not one of {', '.join(RUNTIMES)}"
            raise ValueError(msg)

    @property
    def effective_cpu(self) -> float:
        """The CPUs the function gets: ``cpu``, or the fewest its memory requires."""
        return self.cpu if self.cpu is not None else min_cpu_for(self.memory)

    @property
    def python_version(self) -> str:
        """The Python version of the runtime, e.g. ``"3.12"``."""
        digits = self.runtime.removeprefix("python")
        return f"{digits[0]}.{digits[1:]}"
