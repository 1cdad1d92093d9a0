"""The examples run as the README says, end to end, in fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_demo_runs_prints_the_summary_graph_and_result(tmp_path: Path) -> None:
    env = dict(os.environ, GLACIER_DEMO_ROOT=str(tmp_path), COLUMNS="160")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "demo.py")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for expected in ("succeeded", "extract", "transform", "aggregate", "daily_totals", "graph LR", "cat-1"):
        assert expected in proc.stdout
    assert (tmp_path / "lake" / "output" / "by_category.parquet").exists()


def test_the_aws_example_runs_on_moto(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "aws_etl.py"), "--moto"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run " in proc.stdout and "succeeded in" in proc.stdout and "graph LR" in proc.stdout


def test_the_aws_example_without_moto_names_the_install_that_brings_it(tmp_path: Path) -> None:
    # moto missing, as after an install without glacier-aws's testing extra.
    code = "import runpy, sys; sys.modules['moto'] = None; sys.argv[1:] = ['--moto']; runpy.run_path(sys.argv[0], run_name='__main__')"
    example = str(EXAMPLES / "aws_etl.py")
    proc = subprocess.run([sys.executable, "-c", code.replace("sys.argv[0]", repr(example))], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install -e "packages/glacier-aws[testing]"' in lines[0], proc.stderr


def test_the_multicloud_example_runs_on_the_three_emulators(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}
    env.update(GLACIER_LOCAL_ROOT=str(tmp_path / "local"), COLUMNS="200")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "multicloud_etl.py"), "--emulators"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for expected in ('subgraph c0["aws"]', '"aws → gcp"', "clean_events writes gs://", "join_reference reads az://", "estimated egress per run: $", "wall time: glacier"):
        assert expected in proc.stdout, proc.stdout
    assert (tmp_path / "local" / "reports" / "totals.parquet").exists()
