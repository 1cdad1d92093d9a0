"""Config classes, contributed by the installed provider plugins.

``from glacier.config import AwsConfig`` works once ``glacier-aws`` is installed:
this module asks the plugins (hook ``glacier_configs``) for the class on first access.
Asking for a config whose plugin is missing raises an :class:`ImportError` that names
the package to install.

Examples
--------
>>> from glacier.config import LocalConfig   # provided by glacier-local
>>> LocalConfig(root="/srv/data").root
'/srv/data'
"""

from __future__ import annotations

from typing import Any

from glacier.errors import PluginNotInstalledError

__all__: list[str] = []  # filled by the installed plugins; see available()


def available() -> list[str]:
    """The names of every config class the installed plugins provide."""
    from glacier.plugins.registry import config_classes

    return sorted(config_classes())


def __getattr__(name: str) -> Any:
    from glacier.plugins.registry import KNOWN_PACKAGES, config_classes

    found = config_classes().get(name) if name[:1].isupper() else None
    if found is not None:
        return found
    if not name[:1].isupper():
        # Not a class name (tools probe modules for e.g. `pytest_plugins`): the
        # plain AttributeError that getattr(module, name, default) expects.
        raise AttributeError(f"module 'glacier.config' has no attribute {name!r}")
    raise PluginNotInstalledError(
        f"glacier.config has no {name!r}: no installed Glacier plugin provides it.\n"
        f"Available: {', '.join(available()) or 'none'}.",
        KNOWN_PACKAGES.get(name),
    )


def __dir__() -> list[str]:
    return ["available", *available()]
