"""Glacier's built-in plugin: ``file://`` and ``memory://`` buckets and the in-process executor.

Registered first, through the same hooks any provider package uses, so that every
provider's ``local()`` executor and plain local paths work with glacier-core alone.
"""

from __future__ import annotations

from glacier.plugins.hookspecs import hookimpl
from glacier.plugins.registry import ExecutorKind, Scheme


@hookimpl
def glacier_storage_schemes() -> list[Scheme]:
    """The local disk and fsspec's in-process memory filesystem."""
    return [
        Scheme("file", "glacier.plugins.storage:FileStorage", package="glacier-core", provider="local"),
        Scheme("memory", "glacier.plugins.storage:MemoryStorage", package="glacier-core", provider="local"),
    ]


@hookimpl
def glacier_executor_kinds() -> list[ExecutorKind]:
    """The in-process executor behind every ``provider.local()``."""
    return [ExecutorKind("local", "glacier.run.local:InProcessExecutor")]
