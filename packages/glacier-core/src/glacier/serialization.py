"""Provider configs as JSON-ready data, so a bucket can cross a process boundary.

Secrets never travel this way: configs hold region, endpoint and names, and each side
gets credentials from its own environment (the standard chains).
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["config_to_dict", "config_from_dict"]


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
    """Rebuild a config from :func:`config_to_dict`."""
    if not data:
        return None
    from glacier.registry import import_object

    return import_object(str(data["type"]))(**data.get("fields", {}))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
