"""The deployment manifest: which deployed function runs which task.

``mode="generate"`` writes it (``glacier-deployment.json`` beside the Terraform, and a
copy in the state directory); cloud mode reads it to find each task's function.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from glacier._atomic import write_atomic
from glacier._state import state_dir as resolve
from glacier.errors import DeploymentNotFoundError

__all__ = ["MANIFEST", "load_deployment", "remember"]


MANIFEST = "glacier-deployment.json"


def load_deployment(pipeline: str, manifest: str | Path | None = None, state_dir: str | None = None) -> dict[str, Any]:
    """The deployment manifest of ``pipeline``: from ``manifest`` or the state directory.

    Raises
    ------
    DeploymentNotFoundError
        When there is none, with what to do about it.
    """
    path = Path(manifest) if manifest else resolve(state_dir) / "deployments" / f"{_safe(pipeline)}.json"
    if not path.exists():
        msg = (
            f"No deployment of pipeline {pipeline!r} found at {path}.\n\n"
            f"Hint: run pipeline.run(mode=\"generate\", out=DIR) (or `glacier generate FILE --out DIR`), "
            "apply it with `terraform -chdir=DIR init && terraform -chdir=DIR apply`, then run cloud mode "
            "(or pass manifest=DIR/glacier-deployment.json)"
        )
        raise DeploymentNotFoundError(msg)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def remember(pipeline: str, manifest: dict[str, Any], state_dir: str | None) -> None:
    """Keep a copy of ``manifest`` in the state directory, where cloud mode looks for it by pipeline name."""
    path = resolve(state_dir) / "deployments" / f"{_safe(pipeline)}.json"
    write_atomic(path, json.dumps(manifest, indent=2, sort_keys=True, default=str))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"
