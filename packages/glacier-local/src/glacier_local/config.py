"""Configuration of the local provider and its worker executor."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["LocalConfig", "ProcessConfig"]


@dataclass(frozen=True)
class LocalConfig:
    """Buckets on this machine: ``bucket(bucket=B, path=P)`` is the file ``ROOT/B/P``.

    Parameters
    ----------
    root
        The directory buckets live under (made absolute); ``"memory://"`` puts
        buckets in this process's memory instead (``memory://B/P``).

    Examples
    --------
    >>> LocalConfig(root="/srv/lake").root
    '/srv/lake'
    """

    root: str = "."

    def __post_init__(self) -> None:
        root = str(self.root)
        if not root.startswith("memory://"):
            root = os.path.abspath(os.path.expanduser(root))
        object.__setattr__(self, "root", root)

    @property
    def in_memory(self) -> bool:
        """Whether buckets live in memory rather than on disk."""
        return self.root.startswith("memory://")


@dataclass(frozen=True)
class ProcessConfig:
    """The local worker executor: each step runs in a fresh Python process.

    Parameters
    ----------
    timeout
        Seconds a step may run before its worker is killed, when the task sets
        no ``timeout`` of its own.
    """

    timeout: float | None = None
