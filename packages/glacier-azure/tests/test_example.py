"""examples/azure_etl.py runs as its docstring says: ``--azurite`` runs the seed pipeline on Azurite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "azure_etl.py"


def test_the_azure_example_runs_on_azurite(tmp_path: Path, azurite: object) -> None:  # azurite: npm's package is installed by then
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--azurite"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "succeeded in" in proc.stdout and "graph LR" in proc.stdout and "c9" in proc.stdout
