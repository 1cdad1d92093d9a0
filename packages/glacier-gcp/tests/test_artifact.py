"""The Cloud Functions source zip: what Cloud Functions builds a function from, deterministic, its size reported."""

from __future__ import annotations

import importlib.metadata
import zipfile
from pathlib import Path

from glacier.config import CloudFunctionConfig
from glacier_gcp.infra.artifact import FUNCTIONS_FRAMEWORK, MAIN_PY, build_artifact


def test_the_zip_holds_main_requirements_the_users_modules_and_glacier(tmp_path: Path) -> None:
    task = tmp_path / "my_tasks.py"
    task.write_text("def f(df):\n    return df\n")
    artifact = build_artifact([("my_tasks", task)], CloudFunctionConfig(), tmp_path / "out")
    assert artifact.path.name == "glacier-function-python312.zip"
    with zipfile.ZipFile(artifact.path) as archive:
        names = set(archive.namelist())
        assert archive.read("main.py").decode() == MAIN_PY
        requirements = archive.read("requirements.txt").decode().splitlines()
    assert {"main.py", "requirements.txt", "my_tasks.py", "glacier/__init__.py", "glacier_gcp/handler.py"} <= names
    assert {"glacier_gcp-0.1.0.dist-info/entry_points.txt", "glacier_core-0.1.0.dist-info/METADATA"} <= names
    assert not [n for n in names if n.startswith("glacier_gcp/testing/") or "__pycache__" in n]
    assert f"polars=={importlib.metadata.version('polars')}" in requirements
    assert f"gcsfs=={importlib.metadata.version('gcsfs')}" in requirements
    framework = importlib.metadata.version("functions-framework") if _installed("functions-framework") else FUNCTIONS_FRAMEWORK
    assert f"functions-framework=={framework}" in requirements
    assert all("==" in line for line in requirements), requirements


def test_the_same_inputs_give_the_same_bytes_and_sizes_are_reported(tmp_path: Path) -> None:
    first = build_artifact([], CloudFunctionConfig(), tmp_path / "a")
    second = build_artifact([], CloudFunctionConfig(), tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes() and first.sha256_hex == second.sha256_hex
    assert first.zipped_bytes == first.path.stat().st_size and 0 < first.zipped_bytes < first.unzipped_bytes
    assert list(first.packages)[0] == "glacier"


def test_a_changed_module_changes_the_digest(tmp_path: Path) -> None:
    task = tmp_path / "my_tasks.py"
    task.write_text("X = 1\n")
    before = build_artifact([("my_tasks", task)], CloudFunctionConfig(), tmp_path / "a").sha256_hex
    task.write_text("X = 2\n")
    assert build_artifact([("my_tasks", task)], CloudFunctionConfig(), tmp_path / "b").sha256_hex != before


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True
