"""The plugin manager and what plugins contribute: one concern, one module.

There is one process-wide :class:`pluggy.PluginManager`, built on first use (not at
``import glacier``, so that importing the library stays cheap): the built-in plugins
in :data:`DEFAULT_PLUGINS` first, then every module of the ``glacier`` entry-point
group. They use the same hooks (:mod:`glacier.plugins.hookspecs`) as a third party's
package.

Plugins return small records from those hooks (:class:`Scheme`, :class:`ExecutorKind`,
:class:`CodegenTarget`). Each names its implementation by a dotted path
(``"package.module:Name"``), imported only when first used, so that ``import glacier``
and ``glacier plugins`` stay fast and never pull in a cloud SDK. The lookups below
(:func:`schemes`, :func:`scheme_for`, :func:`executor_kind`...) collect them.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pluggy

from glacier.errors import (
    PluginConflictError,
    PluginNotInstalledError,
    UnknownSchemeError,
)
from glacier.plugins import hookspecs

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "get_plugin_manager",
    "reset_plugin_manager",
    "plugin_report",
    "Scheme",
    "ExecutorKind",
    "CodegenTarget",
    "EgressPrice",
    "import_object",
    "schemes",
    "scheme_for",
    "executor_kinds",
    "executor_kind",
    "codegen_targets",
    "config_classes",
    "egress_prices",
    "scheme_provider",
    "KNOWN_PACKAGES",
]

#: The entry-point group a provider package registers its plugin module under.
ENTRY_POINT_GROUP = "glacier"

#: Modules registered before any entry point: Glacier's own behaviour, as plugins.
DEFAULT_PLUGINS: tuple[str, ...] = ("glacier.plugins.builtins",)

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first call.

    Examples
    --------
    >>> pm = get_plugin_manager()
    >>> "glacier.plugins.builtins" in dict(pm.list_name_plugin())
    True
    """
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                pm = pluggy.PluginManager("glacier")
                pm.add_hookspecs(hookspecs)
                for name in DEFAULT_PLUGINS:
                    pm.register(importlib.import_module(name), name=name)
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
                _manager = pm
    return _manager


def reset_plugin_manager() -> None:
    """Forget the plugin manager and what it collected, e.g. after installing a plugin."""
    global _manager
    with _lock:
        _manager = None
    clear_caches()


@dataclass
class PluginInfo:
    """What one plugin contributes, as ``glacier plugins`` lists it."""

    name: str
    distribution: str | None
    schemes: list[str] = field(default_factory=list)
    executors: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)
    codegen: list[str] = field(default_factory=list)
    lifecycle: list[str] = field(default_factory=list)


def plugin_report() -> list[PluginInfo]:
    """Every registered plugin with the schemes, executors, configs and generators it adds."""
    pm = get_plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos: dict[str, PluginInfo] = {}
    for name, plugin in pm.list_name_plugin():
        dist = dists.get(id(plugin))
        infos[name] = PluginInfo(name, f"{dist.project_name} {dist.version}" if dist else None)

    def each(hook: str) -> list[tuple[str, Any]]:
        return [(impl.plugin_name, impl.function()) for impl in getattr(pm.hook, hook).get_hookimpls()]

    for plugin_name, items in each("glacier_storage_schemes"):
        infos[plugin_name].schemes += [f"{s.name}://" for s in items or []]
    for plugin_name, items in each("glacier_executor_kinds"):
        infos[plugin_name].executors += [k.name for k in items or []]
    for plugin_name, items in each("glacier_configs"):
        infos[plugin_name].configs += [c.__name__ for c in items or []]
    for plugin_name, items in each("glacier_codegen_targets"):
        infos[plugin_name].codegen += [t.name for t in items or []]
    for hook in ("glacier_run_started", "glacier_step_started", "glacier_step_finished", "glacier_step_failed", "glacier_run_finished"):
        for impl in getattr(pm.hook, hook).get_hookimpls():
            infos[impl.plugin_name].lifecycle.append(hook.removeprefix("glacier_"))
    return list(infos.values())


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
        Dotted path of a :class:`glacier.plugins.storage.Storage` subclass.
    package
        The distribution that provides it, named in error hints.
    override
        Take over a scheme another plugin already serves (otherwise two
        plugins claiming one scheme is an error naming both).
    provider
        The provider (cloud) whose store the scheme names (``"aws"``), so that a
        bucket made from a bare URI is placed in the right cloud by ``visualize()``
        and ``mode="analyze"``; see :func:`scheme_provider`.
    function_requirements
        The distributions a deployed function needs to use the scheme, beyond Glacier's
        core and :attr:`package` itself (``("s3fs",)``). A provider's artifact builder
        adds them, with :attr:`package`, to every function whose steps touch the scheme
        and that the builder does not already equip for it (see
        :func:`glacier.infra.artifact.scheme_needs`); a function that does not touch the
        scheme carries none of them.

    Examples
    --------
    >>> Scheme("s3", "glacier_aws.storage:S3Storage", package="glacier-aws", provider="aws").provider
    'aws'
    """

    name: str
    storage: str
    package: str | None = None
    override: bool = False
    provider: str | None = None
    function_requirements: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecutorKind:
    """An executor kind: what ``provider.serverless(config=...)`` builds for a config type.

    Parameters
    ----------
    name
        Short name shown in graphs and listings (``"lambda"``).
    executor
        Dotted path of a :class:`glacier.plugins.executor.Executor` subclass.
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
        ``plan.module`` (a :class:`glacier.infra.terraform.TerraformModule`).
    """

    name: str
    provider: str
    generator: str


@dataclass(frozen=True)
class EgressPrice:
    """What a provider charges for data leaving it for the internet (another cloud).

    ``mode="analyze"`` multiplies each cross-cloud edge's bytes by the price of the
    cloud the data leaves. Glacier ships a dated table for its own providers
    (:data:`glacier.analysis.EGRESS_PRICES`); a plugin's price, from
    ``glacier_egress_prices``, takes precedence over it.

    Parameters
    ----------
    provider
        The provider name (``"aws"``).
    usd_per_gb
        US dollars per GB (2**30 bytes) sent out to the internet.
    source
        Where the price is published (the pricing page's URL).
    as_of
        The date (``YYYY-MM-DD``) the figure was taken.
    note
        Which tier, region or route the figure is for.

    Examples
    --------
    >>> EgressPrice("aws", 0.09, "https://aws.amazon.com/s3/pricing/", "2026-12-02").usd_per_gb
    0.09
    """

    provider: str
    usd_per_gb: float
    source: str = ""
    as_of: str = ""
    note: str = ""


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


@cache
def egress_prices() -> dict[str, EgressPrice]:
    """Every egress price contributed by an installed plugin, by provider name."""
    return _first_wins(_collect("glacier_egress_prices"), lambda price: price.provider)


# Glacier's own providers' schemes, for a plugin that does not set Scheme.provider.
_FIRST_PARTY_SCHEME_PROVIDERS: dict[str, str] = {
    "file": "local",
    "memory": "local",
    "s3": "aws",
    "s3a": "aws",
    "gs": "gcp",
    "gcs": "gcp",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
}


def scheme_provider(name: str) -> str | None:
    """The provider whose store the URI scheme ``name`` names, or ``None`` if unknown.

    The installed :class:`Scheme`'s ``provider`` when it sets one, otherwise the
    provider of Glacier's own packages for their schemes.

    Examples
    --------
    >>> scheme_provider("file"), scheme_provider("s3"), scheme_provider("nope")
    ('local', 'aws', None)
    """
    found = schemes().get(name.lower())
    if found is not None and found.provider:
        return found.provider
    return _FIRST_PARTY_SCHEME_PROVIDERS.get(name.lower())


def clear_caches() -> None:
    """Forget what was collected from plugins (after plugins were added or removed)."""
    for fn in (schemes, executor_kinds, codegen_targets, config_classes, egress_prices):
        fn.cache_clear()
