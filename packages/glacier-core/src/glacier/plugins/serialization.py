"""Provider configs as JSON-ready data, so a bucket can cross a process boundary.

Secrets never travel this way: configs hold region, endpoint and names, and each side
gets credentials from its own environment (the standard chains).

The receiving side rebuilds only config classes that installed plugins contribute
(hook ``glacier_configs``): a payload comes from whoever may invoke a function, and a
``"type"`` such as ``"subprocess:run"`` must never be imported and called.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["config_to_dict", "config_from_dict", "config_class"]


def config_to_dict(config: Any | None) -> dict[str, Any] | None:
    """``{"type": "pkg.module:Class", "fields": {...}}`` for a dataclass config, else ``None``."""
    if config is None:
        return None
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        msg = f"Provider configs must be dataclasses to cross processes, got {type(config).__name__}"
        raise TypeError(msg)
    cls = type(config)
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}
    return {"type": f"{cls.__module__}:{cls.__qualname__}", "fields": _plain(fields)}


def config_from_dict(data: dict[str, Any] | None) -> Any | None:
    """Rebuild a config from :func:`config_to_dict`.

    Raises
    ------
    PluginNotInstalledError
        When ``data["type"]`` is not a config class of an installed plugin (nothing is
        imported for it).
    TypeError
        When ``data["fields"]`` is not an object of that class's fields.
    """
    if not data:
        return None
    name = str(data.get("type"))
    cls = config_class(name)
    fields = data.get("fields", {})
    if not isinstance(fields, dict):
        msg = f"the fields of config type {name!r} must be an object of field names and values, got {type(fields).__name__}"
        raise TypeError(msg)
    return cls(**fields)


def config_class(name: str) -> type:
    """The config class that ``name`` (``"package.module:Class"``) denotes, if an installed plugin contributes it.

    Raises
    ------
    PluginNotInstalledError
        For any other name, naming the package to install when it is one of Glacier's.

    Examples
    --------
    >>> config_class("glacier_local.config:LocalConfig").__name__
    'LocalConfig'
    """
    from glacier.errors import PluginNotInstalledError
    from glacier.plugins.registry import KNOWN_PACKAGES, config_classes

    known = {f"{cls.__module__}:{cls.__qualname__}": cls for cls in config_classes().values()}
    found = known.get(name)
    if found is None:
        short = name.replace(":", ".").rpartition(".")[2]
        msg = (
            f"config type {name!r} is not a config class of an installed Glacier plugin, so it was not rebuilt "
            f"(nothing was imported for it); config types here: {', '.join(sorted(known)) or 'none'}."
        )
        raise PluginNotInstalledError(msg, KNOWN_PACKAGES.get(short))
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
