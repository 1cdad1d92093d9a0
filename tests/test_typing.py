"""The packages are typed (py.typed) and mypy finds no error in them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "packages" / p / "src" / m for p, m in (("glacier-core", "glacier"), ("glacier-local", "glacier_local"), ("glacier-aws", "glacier_aws"), ("glacier-gcp", "glacier_gcp"), ("glacier-azure", "glacier_azure"))]


def test_every_package_ships_py_typed() -> None:
    assert all((source / "py.typed").exists() for source in SOURCES)


def test_mypy_finds_no_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports", "--no-error-summary", "--cache-dir", str(tmp_path / "mypy"), *map(str, SOURCES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
