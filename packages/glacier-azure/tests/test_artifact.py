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
from typing import Any

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


MIXED_PIPELINE = '''
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, AzureFunctionConfig, GcpConfig

aws = Provider(config=AwsConfig(region="us-east-1"))
gcp = Provider(config=GcpConfig(project="p"))
azure = Provider(config=AzureConfig(storage_account="lake"))

@azure.serverless(config=AzureFunctionConfig()).task
def crossing(df):
    return df

@azure.serverless(config=AzureFunctionConfig()).task
def at_home(df):
    return df

pipeline = Pipeline.compose(
    Pipeline(name="x").source(aws.bucket(bucket="slake", path="in.parquet")).transform(crossing).to(gcp.bucket(bucket="glake", path="out.parquet")),
    Pipeline(name="h").source(azure.bucket(bucket="alake", path="in.parquet")).transform(at_home).to(azure.bucket(bucket="alake", path="out.parquet")),
    name="mixed",
)
'''


@pytest.fixture(scope="module")
def mixed_specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Azure functions of a pipeline: ``crossing`` reads s3:// and writes gs://, ``at_home`` touches only az://."""
    from glacier.cli import load_pipeline
    from glacier.infra.generate import function_specs

    folder = tmp_path_factory.mktemp("mixed")
    (folder / "mixed_pipeline.py").write_text(MIXED_PIPELINE)
    pipeline = load_pipeline(f"{folder / 'mixed_pipeline.py'}:pipeline")
    return dict(function_specs(pipeline, pipeline.build())["azure"])


def _site_tops(zip_path: Path) -> set[str]:
    with zipfile.ZipFile(zip_path) as zf:
        below = [n.removeprefix(f"{SITE_PACKAGES}/") for n in zf.namelist() if n.startswith(f"{SITE_PACKAGES}/")]
    return {n.split("/")[0] for n in below} | {n for n in below if n.endswith(".py")}


def test_a_function_reading_s3_and_writing_gs_carries_their_storage_below_site_packages(mixed_specs: dict[str, Any], tmp_path: Path) -> None:
    spec = mixed_specs["crossing"]
    art = build_artifact([(spec.module, spec.source_file)], LOCAL, tmp_path, functions=[spec])
    tops = _site_tops(art.path)
    for member in ("glacier_aws", "glacier_aws/storage.py", "s3fs", "botocore", "aiobotocore", "glacier_gcp", "glacier_gcp/light.py", "google", "requests"):
        assert member in tops, member
    assert {"glacier_aws-0.1.0.dist-info", "glacier_gcp-0.1.0.dist-info"} <= tops
    assert not {"gcsfs", "grpc"} & tops


def test_a_function_touching_only_az_carries_no_other_clouds_storage(mixed_specs: dict[str, Any], built: Artifact, tmp_path: Path) -> None:
    """Its module imports the other providers' configs, so their plugins come as code; their storage libraries do not."""
    spec = mixed_specs["at_home"]
    art = build_artifact([(spec.module, spec.source_file)], LOCAL, tmp_path, functions=[spec])
    assert not {"s3fs", "botocore", "gcsfs", "google"} & _site_tops(art.path)
    assert {"glacier_aws", "glacier_gcp", "glacier_aws-0.1.0.dist-info", "glacier_gcp-0.1.0.dist-info"} <= _site_tops(art.path)
    assert set(art.packages) - {"mixed_pipeline"} == (set(built.packages) - {"etl"}) | {"glacier-aws", "glacier-gcp"}
    assert art.packages["glacier-aws"] + art.packages["glacier-gcp"] < 1_000_000  # code only
