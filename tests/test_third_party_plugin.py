"""A separately built distribution adds a URI scheme; Glacier finds and uses it unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "glacier-shout"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip-install the fixture distribution (a real wheel build) into a private target dir."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(FIXTURE)],
        check=True,
    )
    assert list(target.glob("glacier_shout-1.0.0.dist-info/entry_points.txt"))
    return target


def run_python(code: str, site: Path | None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SHOUT_ROOT=str(tmp_path), PYTHONPATH=os.pathsep.join(filter(None, [str(site) if site else "", os.environ.get("PYTHONPATH", "")])))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=tmp_path)


PIPELINE = """
    import polars as pl
    from glacier import Bucket, Pipeline, Provider
    from glacier.config import LocalConfig
    from glacier.plugins.registry import plugin_report

    raw = Bucket.from_uri("shout://lake/raw.parquet")
    out = Bucket.from_uri("shout://lake/out.parquet")
    import os; os.makedirs(os.path.join(os.environ["SHOUT_ROOT"], "LAKE"), exist_ok=True)
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(os.path.join(os.environ["SHOUT_ROOT"], "LAKE", "raw.parquet"))
    local = Provider(config=LocalConfig(root=".")).local()

    @local.task
    def double(df):
        return df.with_columns(pl.col("x") * 2)

    result = Pipeline("shouty").source(raw).transform(double).to(out).run()
    print(result.summary())
    for step in result.failed:
        print(step.error)
    print("schemes:", [i.schemes for i in plugin_report() if i.name == "shout"])
    print("out:", pl.read_parquet(os.path.join(os.environ["SHOUT_ROOT"], "LAKE", "out.parquet"))["x"].to_list())
"""


def test_installed_plugin_scheme_is_discovered_and_used(installed_plugin: Path, tmp_path: Path) -> None:
    proc = run_python(PIPELINE, installed_plugin, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "schemes: [['shout://']]" in proc.stdout
    assert "out: [2, 4, 6]" in proc.stdout


def test_without_the_plugin_the_scheme_is_unknown(tmp_path: Path) -> None:
    proc = run_python(PIPELINE, None, tmp_path)
    assert proc.returncode != 0
    assert "No installed Glacier plugin handles the URI scheme 'shout'" in proc.stdout + proc.stderr


def test_glacier_plugins_lists_the_third_party_plugin(installed_plugin: Path, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "200")  # the table wraps its cells at the terminal's width, 80 in a pipe
        proc = run_python("from glacier.cli import main; main(['plugins'])", installed_plugin, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "glacier-shout 1.0.0" in proc.stdout and "shout://" in proc.stdout
