"""The deployment manifest's files: which deployed function runs which task.

``mode="generate"`` writes a :class:`~glacier.plugins.deployment.Deployment`
(``glacier-deployment.json`` beside the Terraform, and a copy in the state directory);
cloud mode reads it to find each task's function. Its fields are documented in
:mod:`glacier.plugins.deployment`. A manifest of another format version than
:data:`~glacier.plugins.deployment.DEPLOYMENT_VERSION` is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from glacier._atomic import write_atomic
from glacier._state import state_dir as resolve
from glacier.errors import DeploymentNotFoundError
from glacier.plugins.deployment import DEPLOYMENT_VERSION, Deployment

__all__ = ["MANIFEST", "load_deployment", "remember", "write_deployment"]


MANIFEST = "glacier-deployment.json"


def load_deployment(pipeline: str, manifest: str | Path | None = None, state_dir: str | None = None) -> Deployment:
    """The deployment manifest of ``pipeline``: from ``manifest`` or the state directory.

    Raises
    ------
    DeploymentNotFoundError
        When there is none, or when it is of another format version (written by
        another Glacier), with what to do about it.
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
    data: Any = json.loads(path.read_text())
    version = data.get("version") if isinstance(data, dict) else None
    if version != DEPLOYMENT_VERSION:
        found = f"version {version!r}" if version is not None else "no version"
        msg = (
            f"The deployment manifest of pipeline {pipeline!r} at {path} has {found}; this Glacier reads "
            f"version {DEPLOYMENT_VERSION} only.\n\n"
            "Hint: run generate again with this Glacier and `terraform apply` it, so that the deployed "
            "functions and the manifest match the code that runs them"
        )
        raise DeploymentNotFoundError(msg)
    return Deployment.from_dict(data)


def write_deployment(deployment: Deployment, path: str | Path) -> None:
    """Write ``deployment`` to the file ``path`` (in one step: a reader never sees half of it)."""
    write_atomic(Path(path), _json(deployment))


def remember(pipeline: str, manifest: Deployment, state_dir: str | None) -> None:
    """Keep a copy of ``manifest`` in the state directory, where cloud mode looks for it by pipeline name."""
    write_atomic(resolve(state_dir) / "deployments" / f"{_safe(pipeline)}.json", _json(manifest))


def _json(deployment: Deployment) -> str:
    return json.dumps(deployment.to_dict(), indent=2, sort_keys=True, default=str)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"
