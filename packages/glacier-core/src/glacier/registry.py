"""What plugins contribute, as small records, and the lookups over them.

Plugins return these records from the hooks in :mod:`glacier.hookspecs`. Each names
its implementation by a dotted path (``"package.module:Name"``), imported only when
first used, so that ``import glacier`` and ``glacier plugins`` stay fast and never
pull in a cloud SDK.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

from glacier.errors import PluginConflictError, PluginNotInstalledError, UnknownSchemeError

__all__ = [
    "Scheme",
    "ExecutorKind",
    "CodegenTarget",
    "import_object",
    "schemes",
    "scheme_for",
    "executor_kinds",
    "executor_kind",
    "codegen_targets",
    "config_classes",
    "KNOWN_PACKAGES",
]

#: Where first-party names live, so an error can name the package to install.
KNOWN_PACKAGES: dict[str, str] = {
    "LocalConfig": "glacier-local",
    "AwsConfig": "glacier-aws",
    "LambdaConfig": "glacier-aws",
    "GcpConfig": "glacier-gcp",
    "CloudFunctionConfig": "glacier-gcp",
    "AzureConfig": "glacier-azure",
    "AzureFunctionConfig": "glacier-azure",
    "s3": "glacier-aws",
    "s3a": "glacier-aws",
    "gs": "glacier-gcp",
    "gcs": "glacier-gcp",
    "az": "glacier-azure",
    "abfs": "glacier-azure",
    "abfss": "glacier-azure",
}


@dataclass(frozen=True)
class Scheme:
    """A bucket URI scheme and the storage class that handles it.

    Parameters
    ----------
    name
        The scheme, without ``://`` (``"s3"``).
    storage
        Dotted path of a :class:`glacier.storage.Storage` subclass.
    package
        The distribution that provides it, named in error hints.
    override
        Take over a scheme another plugin already serves (otherwise two
        plugins claiming one scheme is an error naming both).

    Examples
    --------
    >>> Scheme("s3", "glacier_aws.storage:S3Storage", package="glacier-aws").name
    's3'
    """

    name: str
    storage: str
    package: str | None = None
    override: bool = False


@dataclass(frozen=True)
class ExecutorKind:
    """An executor kind: what ``provider.serverless(config=...)`` builds for a config type.

    Parameters
    ----------
    name
        Short name shown in graphs and listings (``"lambda"``).
    executor
        Dotted path of a :class:`glacier.executor.Executor` subclass.
    config
        Dotted path of the config class that selects this kind, or ``None`` for
        executors made without a config (``provider.local()``).
    provider
        The provider name this kind belongs to (``"aws"``), or ``None`` for any.
    """

    name: str
    executor: str
    config: str | None = None
    provider: str | None = None


@dataclass(frozen=True)
class CodegenTarget:
    """An infrastructure generator for one provider, used by ``mode="generate"``.

    Parameters
    ----------
    name
        Short name (``"terraform-aws"``).
    provider
        The provider whose steps and buckets it generates (``"aws"``).
    generator
        Dotted path of a callable ``(plan) -> None`` that adds resources to
        ``plan.module`` (a :class:`glacier.terraform.TerraformModule`).
    """

    name: str
    provider: str
    generator: str


@cache
def import_object(path: str) -> Any:
    """Import ``"package.module:Name"`` (or ``"package.module.Name"``) and return the object."""
    module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _collect(hook_name: str) -> list[Any]:
    from glacier.plugins import get_plugin_manager

    hook = getattr(get_plugin_manager().hook, hook_name)
    return [item for items in hook() for item in (items or [])]


def _first_wins(items: list[Any], key: Any) -> dict[str, Any]:
    # pluggy calls the most recently registered plugin first; reversing makes the
    # built-ins and earlier plugins win, so a later package cannot silently take over
    # a name that is already served.
    found: dict[str, Any] = {}
    for item in reversed(items):
        found.setdefault(key(item), item)
    return found


@cache
def schemes() -> dict[str, Scheme]:
    """Every installed URI scheme by name.

    Raises
    ------
    PluginConflictError
        When two plugins claim one scheme and neither says ``override=True``.
    """
    found: dict[str, Scheme] = {}
    for scheme in reversed(_collect("glacier_storage_schemes")):
        other = found.get(scheme.name)
        if other is None or scheme.override:
            found[scheme.name] = scheme
        elif other.storage != scheme.storage and not other.override:
            raise PluginConflictError(
                f"Two plugins serve the URI scheme {scheme.name!r}: {other.storage} ({other.package or 'unknown package'}) "
                f"and {scheme.storage} ({scheme.package or 'unknown package'}).",
                "uninstall one of them, or have the one that should win return Scheme(..., override=True)",
            )
    return found


def scheme_for(uri: str) -> Scheme:
    """The :class:`Scheme` that handles ``uri``; a bare path is ``file``.

    Raises
    ------
    UnknownSchemeError
        When no installed plugin handles the scheme; the message names the package
        to install for Glacier's own providers.
    """
    name = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    found = schemes().get(name)
    if found is None:
        installed = [s.package for s in schemes().values() if s.package]
        raise UnknownSchemeError(uri, name, list(schemes()), KNOWN_PACKAGES.get(name), installed_by=sorted(set(installed)))
    return found


@cache
def executor_kinds() -> dict[str, ExecutorKind]:
    """Every installed executor kind by name."""
    return _first_wins(_collect("glacier_executor_kinds"), lambda kind: kind.name)


def executor_kind(config: Any) -> ExecutorKind:
    """The executor kind selected by a config object (matched on its class)."""
    for kind in executor_kinds().values():
        if kind.config is not None and isinstance(config, import_object(kind.config)):
            return kind
    name = type(config).__name__
    raise PluginNotInstalledError(f"No installed executor kind takes a {name}.", KNOWN_PACKAGES.get(name))


@cache
def codegen_targets() -> dict[str, CodegenTarget]:
    """Every installed code-generation target by provider name."""
    return _first_wins(_collect("glacier_codegen_targets"), lambda target: target.provider)


@cache
def config_classes() -> dict[str, type]:
    """Every config class contributed by an installed plugin, by class name."""
    return _first_wins(_collect("glacier_configs"), lambda cls: cls.__name__)


def clear_caches() -> None:
    """Forget what was collected from plugins (after plugins were added or removed)."""
    for fn in (schemes, executor_kinds, codegen_targets, config_classes):
        fn.cache_clear()
