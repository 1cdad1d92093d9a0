"""``az://`` (and ``abfs://``, ``abfss://``) storage: polars streams the data, adlfs does everything around it.

``az://container/path`` is a blob of a container of the config's storage account;
``abfss://container@account.dfs.core.windows.net/path`` is the same blob in ADLS Gen2's
form (the account in the URI must be the config's). Credentials are found in one
place, :func:`account_key`: a connection string in ``AZURE_STORAGE_CONNECTION_STRING``
that names the account, else a key in ``AZURE_STORAGE_KEY``, else none, and then every
client uses ``DefaultAzureCredential`` (polars through its Azure credential provider).
They are never written into a config, a payload, a record or a log.

One upload is atomic for readers on Blob Storage: a blob written with Put Blob appears
only when the request completes, and one staged in blocks (polars' multipart sink)
only when Put Block List commits them, so targets are written in place.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from glacier.errors import PipelineDefinitionError
from glacier.plugins.storage import Storage

if TYPE_CHECKING:
    import fsspec

    from glacier_azure.config import AzureConfig

__all__ = ["AzureBlobStorage", "account_key", "connection_string", "parse_connection_string", "polars_storage_options"]

#: Azurite's development account and its published key (not a secret: it is in Azure's docs).
AZURITE_ACCOUNT = "devstoreaccount1"


def parse_connection_string(text: str) -> dict[str, str]:
    """The ``Key=Value`` pairs of a storage connection string.

    Examples
    --------
    >>> parse_connection_string("AccountName=a;AccountKey=k==;BlobEndpoint=http://127.0.0.1:1/a")["AccountKey"]
    'k=='
    """
    pairs = (part.partition("=") for part in text.split(";") if part.strip())
    return {key.strip(): value.strip() for key, _, value in pairs}


def account_key(config: AzureConfig) -> str | None:
    """The account key for ``config``'s storage account from the environment, or ``None``.

    ``AZURE_STORAGE_CONNECTION_STRING`` counts when its ``AccountName`` is the config's
    account (a pipeline may use several accounts); else ``AZURE_STORAGE_KEY``. With
    ``None``, clients authenticate with ``DefaultAzureCredential``.
    """
    given = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if given:
        parts = parse_connection_string(given)
        if parts.get("AccountName") == config.storage_account and parts.get("AccountKey"):
            return parts["AccountKey"]
    return os.environ.get("AZURE_STORAGE_KEY") or None


def connection_string(config: AzureConfig, key: str) -> str:
    """A connection string for ``config``'s account, its endpoints and ``key`` (for adlfs and the SDK).

    Examples
    --------
    >>> from glacier_azure.config import AzureConfig
    >>> connection_string(AzureConfig(storage_account="acct", endpoint_url="http://127.0.0.1:7/acct"), "k")
    'DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=k;BlobEndpoint=http://127.0.0.1:7/acct;QueueEndpoint=https://acct.queue.core.windows.net'
    """
    blob, queue = config.endpoint_for("blob"), config.endpoint_for("queue")
    protocol = "http" if blob.startswith("http://") else "https"
    return f"DefaultEndpointsProtocol={protocol};AccountName={config.storage_account};AccountKey={key};BlobEndpoint={blob};QueueEndpoint={queue}"


def polars_storage_options(config: AzureConfig | None, *, key: str | None = None) -> dict[str, str]:
    """polars (object_store) options for ``config``: account, key if one is given, endpoint.

    ``key`` defaults to :func:`account_key`. A custom endpoint (Azurite on any port) is
    ``endpoint`` plus ``allow_http`` for ``http://``; object_store's ``use_emulator``
    is never set, because it silently forces port 10000.

    Examples
    --------
    >>> from glacier_azure.config import AzureConfig
    >>> polars_storage_options(AzureConfig(storage_account="devstoreaccount1", endpoint_url="http://127.0.0.1:5/devstoreaccount1"), key="k")  # doctest: +NORMALIZE_WHITESPACE
    {'account_name': 'devstoreaccount1', 'account_key': 'k', 'endpoint': 'http://127.0.0.1:5/devstoreaccount1', 'allow_http': 'true'}
    >>> polars_storage_options(AzureConfig(storage_account="mylake"), key=None)
    {'account_name': 'mylake'}
    """
    if config is None:
        return {}
    options = {"account_name": config.storage_account}
    key = key if key is not None else account_key(config)
    if key:
        options["account_key"] = key
    if config.endpoint_url or config.service_endpoints.get("blob"):
        endpoint = config.endpoint_for("blob")
        options["endpoint"] = endpoint
        if endpoint.startswith("http://"):
            options["allow_http"] = "true"
    return options


class AzureBlobStorage(Storage):
    """Azure Blob Storage (and ADLS Gen2) containers of one storage account.

    The fingerprint of a blob is its ETag (which changes on every write), with its size.
    """

    protocol: ClassVar[str] = "az"
    native: ClassVar[bool] = True
    atomic_upload: ClassVar[bool] = True
    config: AzureConfig | None

    def make_filesystem(self) -> fsspec.AbstractFileSystem:
        """An adlfs filesystem for the config's account: its key from the environment, else DefaultAzureCredential."""
        try:
            import adlfs
        except ImportError as exc:  # pragma: no cover - adlfs is a dependency
            from glacier.errors import PluginNotInstalledError

            raise PluginNotInstalledError("az:// needs adlfs.", "glacier-azure") from exc
        config = self._require_config()
        key = account_key(config)
        if key:
            # adlfs forces https on account_host; a connection string keeps the endpoint as given.
            return adlfs.AzureBlobFileSystem(connection_string=connection_string(config, key))
        if config.endpoint_url or config.service_endpoints.get("blob"):
            from azure.identity import DefaultAzureCredential

            return adlfs.AzureBlobFileSystem(account_name=config.storage_account, account_host=config.endpoint_for("blob").split("://", 1)[1],
                                             credential=DefaultAzureCredential())  # fmt: skip
        return adlfs.AzureBlobFileSystem(account_name=config.storage_account, anon=False)

    def storage_options(self) -> dict[str, str] | None:
        """Account, key and endpoint for polars; see :func:`polars_storage_options`."""
        return polars_storage_options(self.config) or None

    def credential_provider(self) -> Any:
        """``None`` when an account key is given (it is in the storage options), else polars' Azure chain."""
        if self.config is not None and account_key(self.config):
            return None
        return "auto"

    def path(self, uri: str) -> str:
        """``container/path`` of any of the three forms; an ``abfss://`` URI must name the config's account.

        Examples
        --------
        >>> from glacier_azure.config import AzureConfig
        >>> AzureBlobStorage(AzureConfig(storage_account="lake")).path("abfss://raw@lake.dfs.core.windows.net/a/b.parquet")
        'raw/a/b.parquet'
        """
        head = uri.split("://", 1)[-1].split("/", 1)[0]
        if "@" in head and self.config is not None:
            account = head.split("@", 1)[1].split(".", 1)[0]
            if account != self.config.storage_account:
                msg = (
                    f"{uri} names the storage account {account!r}, but its bucket's AzureConfig is for {self.config.storage_account!r}"
                    f"\n\nHint: make the bucket from a Provider(config=AzureConfig(storage_account={account!r}))"
                )
                raise PipelineDefinitionError(msg)
        import adlfs

        return str(adlfs.AzureBlobFileSystem._strip_protocol(uri))

    def prepare_target(self, uri: str) -> None:
        """Nothing: containers are created by the generated Terraform (or the tests), and blob paths need no folders."""

    def _require_config(self) -> AzureConfig:
        if self.config is None:
            from glacier_azure.config import AzureConfig

            account = os.environ.get("AZURE_STORAGE_ACCOUNT") or parse_connection_string(os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")).get("AccountName")
            if not account:
                msg = "an az:// bucket made without an AzureConfig needs AZURE_STORAGE_ACCOUNT (or a connection string) to name its storage account"
                raise PipelineDefinitionError(f"{msg}\n\nHint: Provider(config=AzureConfig(storage_account=...)).bucket(...)")
            self.config = AzureConfig(storage_account=account)
        return self.config
