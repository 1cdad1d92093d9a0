"""The README's and every docs/*.md page's python code blocks run, in order, as written.

Each page becomes one script (tests/markdown_examples.py) run in a fresh interpreter, in
its own temporary directory, with a timeout: a page that runs a pipeline with worker
processes runs it there, under the guard that keeps a worker's import of the script from
starting another run. A page added to docs/ is picked up without a change here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_examples import blocks, script

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def run_page(page: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    # Named after the page so a traceback's file says which page it is.
    path = workdir / f"{page.stem.replace('-', '_')}_md.py"
    path.write_text(script(page), encoding="utf-8")
    env = dict(os.environ, GLACIER_CACHE_DIR=str(workdir / ".cache"), GLACIER_STATE_DIR=str(workdir / ".state"), GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_ROOT="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9", COLUMNS="160")
    return subprocess.run([sys.executable, path.name], cwd=workdir, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_pages_python_blocks_run_in_order(page: Path, tmp_path: Path) -> None:
    proc = run_page(page, tmp_path)
    assert proc.returncode == 0, f"{page.relative_to(ROOT)}: a code block failed (the traceback's line numbers are the page's)\n{proc.stdout}\n{proc.stderr}"


def test_a_broken_block_fails_and_names_its_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n```python\nx = 1\n```\n\ntext\n\n```python\nassert x == 2, 'wrong'\n```\n")
    proc = run_page(page, tmp_path)
    assert proc.returncode != 0
    assert "line 10" in proc.stderr and "wrong" in proc.stderr, proc.stderr


def test_blocks_run_in_one_namespace_in_order_and_markers_hold(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n"
        '<!-- glacier: file="mod.py" -->\n```python\nVALUE = 41\n```\n\n'
        '<!-- glacier: skip reason="needs the network" -->\n```python\nraise SystemExit(3)\n```\n\n'
        "```bash\nexit 3\n```\n\n"
        "```python\nfrom mod import VALUE\nresult = VALUE + 1\n```\n\n"
        "```python\nassert result == 42\nprint('done')\n```\n"
    )
    proc = run_page(page, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"


@pytest.mark.parametrize("marker", ["<!-- glacier: skip -->", '<!-- glacier: skip reason="" -->', '<!-- glacier: run-later="x" -->'])
def test_a_skip_without_reason_or_an_unknown_marker_is_refused(marker: str) -> None:
    with pytest.raises(ValueError, match="glacier"):
        blocks(f"# p\n\n{marker}\n```python\nx = 1\n```\n")
