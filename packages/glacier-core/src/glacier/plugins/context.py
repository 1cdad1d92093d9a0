"""What lifecycle hooks are told about the run in progress.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glacier.dag import TaskInstance

__all__ = ["RunContext"]


@dataclass
class RunContext:
    """What lifecycle hooks are told about the run in progress."""

    run_id: str
    pipeline: str
    mode: str
    steps: list[TaskInstance]
    started: float = field(default_factory=time.time)
