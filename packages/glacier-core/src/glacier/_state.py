"""Where Glacier keeps its state on this machine: run records and deployment manifests."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["state_dir"]


def state_dir(setting: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: the pipeline's ``state_dir=`` setting, else ``GLACIER_STATE_DIR``, else ``.glacier``."""
    chosen = setting or os.environ.get("GLACIER_STATE_DIR") or ".glacier"
    return Path(chosen).expanduser().resolve()
