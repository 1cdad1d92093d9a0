"""Core's artifact builder places the dependencies where a platform wants them and adds the platform's own files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from glacier.infra.artifact import ArtifactSpec, build


@pytest.mark.parametrize("site", ["", ".python_packages/lib/site-packages"], ids=["root", "azure-functions"])
def test_dependencies_and_glacier_go_under_site_packages_and_extra_files_beside_the_code(
    site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLACIER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))
    (tmp_path / "etl.py").write_text("X = 1\n")
    spec = ArtifactSpec("Test", "t.zip", ("manylinux2014_x86_64",), "3.12", ("pluggy",), site_packages=site,
                        extra_files=(("host.json", b'{"version": "2.0"}'), ("function_app.py", b"app = None\n")))  # fmt: skip
    built = build(spec, [("etl", tmp_path / "etl.py")], tmp_path / "out")
    names = set(zipfile.ZipFile(built.path).namelist())
    prefix = f"{site}/" if site else ""
    assert f"{prefix}pluggy/__init__.py" in names and f"{prefix}glacier/__init__.py" in names
    assert any(n.startswith(f"{prefix}glacier_core-") and n.endswith(".dist-info/entry_points.txt") or n.endswith("dist-info/METADATA") for n in names)
    assert {"etl.py", "host.json", "function_app.py"} <= names  # the user's code and the platform's files at the root
    assert zipfile.ZipFile(built.path).read("host.json") == b'{"version": "2.0"}'
    assert {"pluggy", "glacier-core"} <= set(built.packages)  # sizes are counted per package below the prefix too
    assert built.unzipped_bytes == sum(built.packages.values())
