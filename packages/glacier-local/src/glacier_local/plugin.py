"""glacier-local's plugin module (entry point ``glacier: local``)."""

from __future__ import annotations

from typing import Any

from glacier import hookimpl
from glacier.plugins.backend import ProviderBackend
from glacier.plugins.registry import ExecutorKind

from glacier_local.config import LocalConfig, ProcessConfig


@hookimpl
def glacier_configs() -> list[type]:
    """``LocalConfig`` and ``ProcessConfig``."""
    return [LocalConfig, ProcessConfig]


@hookimpl
def glacier_provider_for_config(config: Any) -> ProviderBackend | None:
    """The local provider for a ``LocalConfig``."""
    if isinstance(config, LocalConfig):
        from glacier_local.backend import LocalBackend

        return LocalBackend(config)
    return None


@hookimpl
def glacier_executor_kinds() -> list[ExecutorKind]:
    """The worker-process executor, chosen by ``ProcessConfig``."""
    return [ExecutorKind("process", "glacier_local.executor:ProcessExecutor", config="glacier_local.config:ProcessConfig", provider="local")]
