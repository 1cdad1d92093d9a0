"""Configuration of the Azure provider and its Azure Functions executor, checked against Azure's limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AzureConfig", "AzureFunctionConfig", "FLEX_LIMITS", "RUNTIMES"]

#: Flex Consumption's limits that a config can break. The platform allows an unbounded
#: timeout for queue-triggered functions; Glacier caps a step at four hours so that a
#: lost result is noticed on the same day (``functionTimeout`` in host.json is set from it).
FLEX_LIMITS: dict[str, Any] = {
    "instance_memory_mb": (512, 2048, 4096),
    "timeout_s": (1, 14_400),
    "max_instances": (40, 1000),
    "http_response_s": 230,  # why steps go through a queue, not an HTTP trigger
    "max_dequeue_count": (1, 20),
}

#: The Python versions Flex Consumption runs, as ``AzureFunctionConfig(runtime=...)`` names them.
RUNTIMES = ("3.11", "3.12", "3.13")


@dataclass(frozen=True)
class AzureConfig:
    """A storage account (and where the functions are deployed) in an Azure subscription.

    Names and endpoints only: credentials come from the standard chains, an account
    key in ``AZURE_STORAGE_KEY``, a connection string in
    ``AZURE_STORAGE_CONNECTION_STRING`` (used when it names this account), else
    ``azure.identity.DefaultAzureCredential`` (managed identity, workload identity,
    the Azure CLI's login...). None is ever stored here, in a payload or in a log.

    Parameters
    ----------
    storage_account
        The storage account holding the buckets: ``az://container/path`` is a blob of
        one of its containers.
    resource_group
        The resource group generated resources go into; ``None`` gives ``<pipeline>-rg``.
    location
        The Azure region, e.g. ``"westeurope"``.
    subscription_id
        The subscription Terraform deploys into (its ``azurerm`` provider); ``None``
        leaves it to ``ARM_SUBSCRIPTION_ID``.
    endpoint_url
        The blob endpoint instead of ``https://<account>.blob.core.windows.net``,
        e.g. Azurite's ``http://127.0.0.1:10000/devstoreaccount1``.
    service_endpoints
        Per-service endpoints (``"blob"``, ``"queue"``), over ``endpoint_url``.

    Raises
    ------
    ValueError
        When ``storage_account`` is not a storage account name (3 to 24 lowercase
        letters and digits).

    Examples
    --------
    >>> AzureConfig(storage_account="mylake").endpoint_for("blob")
    'https://mylake.blob.core.windows.net'
    >>> AzureConfig(storage_account="devstoreaccount1", service_endpoints={"queue": "http://127.0.0.1:10001/devstoreaccount1"}).endpoint_for("queue")
    'http://127.0.0.1:10001/devstoreaccount1'
    >>> AzureConfig(storage_account="My-Lake")
    Traceback (most recent call last):
    ...
    ValueError: AzureConfig: storage_account='My-Lake' must be 3 to 24 lowercase letters and digits (an Azure storage account name)
    """

    storage_account: str
    resource_group: str | None = None
    location: str = "eastus"
    subscription_id: str | None = None
    endpoint_url: str | None = None
    service_endpoints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = self.storage_account
        if not (isinstance(name, str) and 3 <= len(name) <= 24 and name.isascii() and name.isalnum() and name == name.lower()):
            msg = f"AzureConfig: storage_account={name!r} must be 3 to 24 lowercase letters and digits (an Azure storage account name)"
            raise ValueError(msg)

    def endpoint_for(self, service: str) -> str:
        """The endpoint of one storage service (``"blob"``, ``"queue"``, ``"dfs"``) of the account."""
        given = self.service_endpoints.get(service) or (self.endpoint_url if service == "blob" else None)
        return (given or f"https://{self.storage_account}.{service}.core.windows.net").rstrip("/")


@dataclass(frozen=True)
class AzureFunctionConfig:
    """How each serverless task's function app is sized on Flex Consumption.

    Parameters
    ----------
    memory
        The instance memory size in MB: 512, 2048 or 4096.
    timeout
        Seconds a step may run (1 to 14,400). A step is a queue-triggered function, so
        it is not bound by the 230 s an HTTP-triggered function has to answer.
    max_instances
        The most instances the app scales out to (40 to 1,000).
    runtime
        The Python version of the function app: ``"3.11"``, ``"3.12"`` or ``"3.13"``.
    environment
        Extra application settings for the function app.
    max_dequeue_count
        Deliveries of a step's message before it goes to the poison queue (1 to 20).
    log_retention_days
        How long Application Insights' Log Analytics workspace keeps the logs.

    Raises
    ------
    ValueError
        When a value is outside Flex Consumption's limits; the message names the
        field and the allowed values.

    Examples
    --------
    >>> AzureFunctionConfig(memory=4096, timeout=1800).max_instances
    100
    >>> AzureFunctionConfig(memory=1024)
    Traceback (most recent call last):
    ...
    ValueError: AzureFunctionConfig: memory=1024 MB is not a Flex Consumption instance size; allowed: 512, 2048, 4096 MB
    """

    memory: int = 2048
    timeout: int = 1800
    max_instances: int = 100
    runtime: str = "3.12"
    environment: dict[str, str] = field(default_factory=dict)
    max_dequeue_count: int = 1
    log_retention_days: int = 30

    def __post_init__(self) -> None:
        sizes = FLEX_LIMITS["instance_memory_mb"]
        if self.memory not in sizes:
            msg = f"AzureFunctionConfig: memory={self.memory} MB is not a Flex Consumption instance size; allowed: {', '.join(map(str, sizes))} MB"
            raise ValueError(msg)
        ranges = [
            ("timeout", self.timeout, FLEX_LIMITS["timeout_s"], "s"),
            ("max_instances", self.max_instances, FLEX_LIMITS["max_instances"], ""),
            ("max_dequeue_count", self.max_dequeue_count, FLEX_LIMITS["max_dequeue_count"], ""),
        ]
        for name, value, (low, high), unit in ranges:
            if not (isinstance(value, int) and low <= value <= high):
                unit_text = f" {unit}" if unit else ""
                msg = f"AzureFunctionConfig: {name}={value!r}{unit_text} is outside the allowed {low:,} to {high:,}{unit_text}"
                raise ValueError(msg)
        if self.runtime not in RUNTIMES:
            msg = f"AzureFunctionConfig: runtime={self.runtime!r} is not one of {', '.join(RUNTIMES)}"
            raise ValueError(msg)
        if not 30 <= self.log_retention_days <= 730:
            msg = f"AzureFunctionConfig: log_retention_days={self.log_retention_days} is outside Log Analytics' 30 to 730 days"
            raise ValueError(msg)

    @property
    def python_version(self) -> str:
        """The Python version of the runtime, e.g. ``"3.12"``."""
        return self.runtime
