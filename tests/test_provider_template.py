"""Every first-party provider package follows the template in docs/plugins.md, file for file."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The template (docs/plugins.md, "The provider package template"): what every provider holds.
EVERY_PROVIDER = ("__init__.py", "py.typed", "plugin.py", "config.py", "backend.py", "executor.py")
#: What a cloud provider adds: its storage, the function's handler, what it generates, its local harness.
CLOUD_PROVIDER = (*EVERY_PROVIDER, "storage.py", "handler.py", "infra/terraform.py", "infra/iam.py", "infra/artifact.py", "infra/federation.py", "testing/__init__.py")
#: Every provider's tests: the fixtures class and the contract suites.
TESTS = ("fixtures.py", "test_contracts.py")

#: Each first-party provider package, its import name, and whether it deploys to a cloud.
PROVIDERS = {"glacier-local": ("glacier_local", False), "glacier-aws": ("glacier_aws", True), "glacier-gcp": ("glacier_gcp", True), "glacier-azure": ("glacier_azure", True)}

#: What a plugin module may import at module level (beside its own config module).
LIGHT = {"__future__", "typing", "glacier", "glacier.plugins", "glacier.plugins.registry", "glacier.plugins.backend"}
HEAVY = ("boto3", "botocore", "aiobotocore", "s3fs", "fsspec", "gcsfs", "adlfs", "google.cloud", "azure", "polars", "pyarrow", "pandas", "numpy")


def test_every_provider_package_is_held_to_the_template() -> None:
    packages = {p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists()} - {"glacier-core"}
    assert packages == set(PROVIDERS), "add the new provider package to PROVIDERS (cloud or local-only)"


@pytest.mark.parametrize("package", sorted(PROVIDERS))
def test_a_provider_package_has_the_templates_files(package: str) -> None:
    module, cloud = PROVIDERS[package]
    source = ROOT / "packages" / package / "src" / module
    expected = CLOUD_PROVIDER if cloud else EVERY_PROVIDER
    missing = [f"src/{module}/{name}" for name in expected if not (source / name).is_file()]
    missing += [f"tests/{name}" for name in TESTS if not (ROOT / "packages" / package / "tests" / name).is_file()]
    assert not missing, f"{package} lacks {', '.join(missing)} (see docs/plugins.md, 'The provider package template')"


@pytest.mark.parametrize("package", sorted(PROVIDERS))
def test_a_plugin_module_imports_only_glacier_and_its_own_config(package: str) -> None:
    module, _ = PROVIDERS[package]
    tree = ast.parse((ROOT / "packages" / package / "src" / module / "plugin.py").read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [a.name for node in top_level if isinstance(node, ast.Import) for a in node.names]
    names += [node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)]
    wrong = sorted(set(names) - LIGHT - {f"{module}.config"})
    assert not wrong, f"{module}.plugin imports {', '.join(wrong)} at module level; import them inside the hook that needs them"


@pytest.mark.parametrize("package", sorted(PROVIDERS))
def test_loading_a_plugin_module_imports_no_sdk(package: str) -> None:
    module, _ = PROVIDERS[package]
    script = (
        f"import json, sys, {module}.plugin\n"
        f"heavy = {list(HEAVY)!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_docs_give_the_template_file_for_file() -> None:
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text.split("## The provider package template", 1)[1].split("\n## ", 1)[0]
    names = [*(set(CLOUD_PROVIDER) - {"__init__.py", "py.typed", "testing/__init__.py"}), *(f"tests/{name}" for name in TESTS)]
    for name in names:
        assert f"`{name}`" in section, name
