"""The Flex Consumption artifact: the app and host.json at the root, dependencies under .python_packages, deterministic, self-contained.

The first build downloads polars' wheels through pip (~40 MB); later builds reuse
Glacier's dependency cache under GLACIER_CACHE_DIR and run no pip at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from glacier_azure.config import AzureFunctionConfig
from glacier_azure.infra.artifact import SITE_PACKAGES, Artifact, build_artifact

LOCAL = AzureFunctionConfig(runtime=f"3.{sys.version_info.minor}", timeout=5400, max_dequeue_count=3)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    src = tmp_path_factory.mktemp("src")
    (src / "etl.py").write_text("import polars as pl\n\ndef double(df):\n    return df.with_columns(pl.col('x') * 2)\n")
    return build_artifact([("etl", src / "etl.py")], LOCAL, tmp_path_factory.mktemp("out"))


def test_the_app_host_json_and_user_code_are_at_the_root_and_packages_below_site_packages(built: Artifact) -> None:
    names = set(zipfile.ZipFile(built.path).namelist())
    assert {"function_app.py", "host.json", "etl.py"} <= names
    for package in ("polars", "glacier", "glacier_azure", "adlfs", "azure/functions", "azure/storage/blob", "azure/identity"):
        assert f"{SITE_PACKAGES}/{package}/__init__.py" in names, package
    assert any(n.startswith(f"{SITE_PACKAGES}/glacier_azure-") and n.endswith("entry_points.txt") for n in names)
    top = {n.split("/")[0] for n in names}
    assert top == {"function_app.py", "host.json", "etl.py", ".python_packages"}
    assert not [n for n in names if "/pyarrow/" in n or "/pandas/" in n or "glacier_azure/testing/" in n]


def test_host_json_carries_the_timeout_one_step_per_instance_and_the_dequeue_count(built: Artifact) -> None:
    host = json.loads(zipfile.ZipFile(built.path).read("host.json"))
    assert host["functionTimeout"] == "01:30:00"
    queues = host["extensions"]["queues"]
    assert (queues["batchSize"], queues["newBatchThreshold"], queues["maxDequeueCount"], queues["messageEncoding"]) == (1, 0, 3, "base64")


def test_the_build_is_deterministic_and_reports_its_size(built: Artifact, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "etl.py").write_text(zipfile.ZipFile(built.path).read("etl.py").decode())
    again = build_artifact([("etl", src / "etl.py")], LOCAL, tmp_path / "out")
    assert again.path.read_bytes() == built.path.read_bytes() and again.sha256_base64 == built.sha256_base64
    assert built.zipped_bytes == built.path.stat().st_size and built.unzipped_bytes > built.zipped_bytes
    assert list(built.packages)[0] == "polars-runtime-32" and built.unzipped_bytes == sum(built.packages.values())


def test_the_app_indexes_from_the_unzipped_artifact_alone(built: Artifact, tmp_path: Path) -> None:
    code = tmp_path / "code"
    zipfile.ZipFile(built.path).extractall(code)
    probe = (
        "import sys, function_app\n"
        "(f,) = function_app.app.get_functions()\n"
        "import glacier_azure, polars, adlfs\n"
        "assert all(m.__file__.startswith(sys.argv[1]) for m in (glacier_azure, polars, adlfs)), [glacier_azure.__file__]\n"
        "print(f.get_function_name())\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{code}:{code / SITE_PACKAGES}", "PYTHONNOUSERSITE": "1"}
    proc = subprocess.run([sys.executable, "-S", "-c", probe, str(code)], capture_output=True, text=True, env=env, cwd=code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "glacier_step"
