"""Providers: the entry point of the public API, backed by plugins.

``Provider(config=AwsConfig(...))`` asks the installed plugins which of them serves
that config (hook ``glacier_provider_for_config``) and hands the work to the
:class:`ProviderBackend` the plugin returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glacier.errors import PipelineDefinitionError, PluginNotInstalledError
from glacier.plugins.backend import ProviderBackend

if TYPE_CHECKING:
    from glacier.bucket import Bucket
    from glacier.plugins.executor import Executor

__all__ = ['Provider']


class Provider:
    """A cloud (or this machine), chosen by its config; makes executors and buckets.

    Parameters
    ----------
    config
        A config class from :mod:`glacier.config`, e.g. ``LocalConfig(root="data")``
        or ``AwsConfig(region="us-east-1")``.

    Raises
    ------
    PluginNotInstalledError
        When no installed plugin serves the config's type.

    Examples
    --------
    >>> from glacier import Provider
    >>> from glacier.config import LocalConfig
    >>> provider = Provider(config=LocalConfig(root="/tmp/glacier-doc"))
    >>> provider.name
    'local'
    >>> provider.local().type
    'local'
    """

    def __init__(self, config: Any) -> None:
        from glacier.plugins.registry import KNOWN_PACKAGES, get_plugin_manager

        backend = get_plugin_manager().hook.glacier_provider_for_config(config=config)
        if backend is None:
            name = type(config).__name__
            msg = f"No installed Glacier plugin provides a provider for {name}."
            raise PluginNotInstalledError(msg, KNOWN_PACKAGES.get(name))
        self.config = config
        self.backend: ProviderBackend = backend

    @property
    def name(self) -> str:
        """The provider's short name (``"local"``, ``"aws"``...)."""
        return self.backend.name

    def local(self) -> Executor:
        """An executor that runs tasks in this Python process."""
        from glacier.run.local import InProcessExecutor

        return InProcessExecutor(self)

    def serverless(self, config: Any | None = None) -> Executor:
        """An executor that runs each task as a serverless function of this provider.

        Parameters
        ----------
        config
            The function settings (e.g. ``LambdaConfig(memory=1024)``); the
            provider's default when omitted.

        Raises
        ------
        PipelineDefinitionError
            When the config selects an executor kind that belongs to another provider
            (``ExecutorKind.provider``), e.g. a ``LambdaConfig`` given to a local
            provider: that executor would need the other provider's config (region,
            endpoints) to reach its functions.
        """
        from glacier.plugins.registry import executor_kind, import_object

        config = config if config is not None else self.backend.default_serverless_config()
        kind = executor_kind(config)
        if kind.provider is not None and kind.provider != self.name:
            config_name, own = type(config).__name__, type(self.config).__name__
            msg = (
                f"{config_name} selects the {kind.name!r} executor of provider {kind.provider!r}, "
                f"but serverless() was called on provider {self.name!r} ({own}).\n\n"
                f"Hint: make it from a {kind.provider!r} provider (Provider(config=...).serverless(config={config_name}(...))), "
                f"or give this provider a config of its own executor kind ({type(self.backend.default_serverless_config()).__name__})"
            )
            raise PipelineDefinitionError(msg)
        cls = import_object(kind.executor)
        executor: Executor = cls(self, config)
        return executor

    def bucket(self, bucket: str, path: str, **config: Any) -> Bucket:
        """A storage location of this provider.

        Parameters
        ----------
        bucket
            The bucket (container, top directory) name.
        path
            The object's path inside it (or a glob, for a source). It is normalized:
            ``//``, ``.`` and ``x/..`` collapse.
        **config
            Extra settings kept for code generation.

        Raises
        ------
        PipelineDefinitionError
            (a ``ValueError``) when ``bucket`` is not one segment (empty, ``.``, ``..``
            or with a ``/``) or ``path`` climbs above the bucket (``../x.parquet``).

        Examples
        --------
        >>> from glacier import Provider
        >>> from glacier.config import LocalConfig
        >>> Provider(config=LocalConfig(root="/data")).bucket(bucket="lake", path="raw/./a.parquet").uri
        'file:///data/lake/raw/a.parquet'
        """
        from glacier.bucket import Bucket

        return Bucket(self, bucket, path, config)

    def __repr__(self) -> str:
        return f"Provider(config={self.config!r})"
