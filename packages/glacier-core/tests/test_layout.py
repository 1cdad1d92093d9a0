"""The package's layout is its architecture: the user's API at the top, three folders by audience.

``glacier.plugins`` is the bottom (what a provider author imports), ``glacier.infra``
builds on it, ``glacier.run`` on both (but reads deployments only through
``glacier.infra.manifest``). An import against that order, at module level, inside a
function or under ``TYPE_CHECKING``, would tie the layers into a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import glacier

ROOT = Path(glacier.__file__).parent

#: What each subpackage may import of the others.
ALLOWED = {
    "plugins": set(),
    "infra": {"plugins"},
    "run": {"plugins", "infra.manifest"},
    "testing": {"plugins", "run", "infra"},
}
USER_API = {"__init__", "pipeline", "task", "bucket", "provider", "dag", "result", "errors", "config", "analysis", "cli", "progress"}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_subpackage_imports_only_the_layers_below_it(package: str) -> None:
    wrong = []
    for path in sorted((ROOT / package).glob("*.py")):
        for line, name in _imports(path):
            parts = name.split(".")
            if parts[0] != "glacier" or len(parts) < 2 or parts[1] not in ALLOWED or parts[1] == package:
                continue
            if parts[1] in ALLOWED[package] or ".".join(parts[1:3]) in ALLOWED[package]:
                continue
            wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_top_level_holds_the_users_api_and_three_folders_by_audience() -> None:
    modules = {p.stem for p in ROOT.glob("*.py") if not p.stem.startswith("_") or p.stem == "__init__"}
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert modules == USER_API
    assert folders == {"plugins", "run", "infra", "testing"}
