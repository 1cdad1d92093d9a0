"""The one plugin manager: built-ins first, then the ``glacier`` entry-point group.

Glacier builds the manager on first use (not at ``import glacier``) so that importing
the library stays cheap. The built-in plugins in :data:`DEFAULT_PLUGINS` use the same
hooks as a third party's package.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

import pluggy

from glacier import hookspecs

__all__ = ["DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "PluginInfo", "get_plugin_manager", "reset_plugin_manager", "plugin_report"]

#: The entry-point group a provider package registers its plugin module under.
ENTRY_POINT_GROUP = "glacier"

#: Modules registered before any entry point: Glacier's own behaviour, as plugins.
DEFAULT_PLUGINS: tuple[str, ...] = ("glacier.builtins",)

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first call.

    Examples
    --------
    >>> pm = get_plugin_manager()
    >>> "glacier.builtins" in dict(pm.list_name_plugin())
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
    from glacier.registry import clear_caches

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
