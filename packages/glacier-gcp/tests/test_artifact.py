"""The Cloud Functions source zip: what Cloud Functions builds a function from, deterministic, its size reported."""

from __future__ import annotations

import importlib.metadata
import zipfile
from pathlib import Path
from typing import Any

from glacier.config import CloudFunctionConfig
from glacier_gcp.infra.artifact import FUNCTIONS_FRAMEWORK, MAIN_PY, build_artifact, requirements


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


MIXED_PIPELINE = '''
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, CloudFunctionConfig, GcpConfig

aws = Provider(config=AwsConfig(region="us-east-1"))
gcp = Provider(config=GcpConfig(project="p"))
azure = Provider(config=AzureConfig(storage_account="lake"))

@gcp.serverless(config=CloudFunctionConfig()).task
def crossing(df):
    return df

@gcp.serverless(config=CloudFunctionConfig()).task
def at_home(df):
    return df

pipeline = Pipeline.compose(
    Pipeline(name="x").source(aws.bucket(bucket="slake", path="in.parquet")).transform(crossing).to(azure.bucket(bucket="alake", path="out.parquet")),
    Pipeline(name="h").source(gcp.bucket(bucket="glake", path="in.parquet")).transform(at_home).to(gcp.bucket(bucket="glake", path="out.parquet")),
    name="mixed",
)
'''


def _mixed_specs(folder: Path) -> dict[str, Any]:
    """The Cloud Functions of a pipeline: ``crossing`` reads s3:// and writes az://, ``at_home`` touches only gs://."""
    from glacier.cli import load_pipeline
    from glacier.infra.generate import function_specs

    (folder / "mixed_pipeline.py").write_text(MIXED_PIPELINE)
    pipeline = load_pipeline(f"{folder / 'mixed_pipeline.py'}:pipeline")
    return dict(function_specs(pipeline, pipeline.build())["gcp"])


def test_a_function_reading_s3_and_writing_az_pins_their_storage_and_carries_their_plugins(tmp_path: Path) -> None:
    spec = _mixed_specs(tmp_path)["crossing"]
    artifact = build_artifact([(spec.module, spec.source_file)], CloudFunctionConfig(), tmp_path / "out", functions=[spec])
    with zipfile.ZipFile(artifact.path) as archive:
        names = set(archive.namelist())
        lines = archive.read("requirements.txt").decode().splitlines()
    for dist in ("s3fs", "adlfs", "azure-identity", "azure-storage-blob", "botocore"):
        assert f"{dist}=={importlib.metadata.version(dist)}" in lines, dist
    assert set(requirements()) < set(lines) and lines == list(artifact.requirements)
    assert {"glacier_aws/storage.py", "glacier_azure/storage.py", "glacier_aws-0.1.0.dist-info/entry_points.txt", "glacier_azure-0.1.0.dist-info/entry_points.txt"} <= names
    assert not [n for n in names if n.startswith(("glacier_aws/testing/", "glacier_azure/testing/"))]


def test_a_function_touching_only_gs_pins_nothing_more(tmp_path: Path) -> None:
    """Its module imports the other providers' configs, so their plugins come as code; nothing more is pinned."""
    spec = _mixed_specs(tmp_path)["at_home"]
    artifact = build_artifact([(spec.module, spec.source_file)], CloudFunctionConfig(), tmp_path / "out", functions=[spec])
    assert artifact.requirements == requirements()
    assert not any(line.startswith(("s3fs==", "adlfs==", "azure-")) for line in artifact.requirements)
    with zipfile.ZipFile(artifact.path) as archive:
        plugins = [info for info in archive.infolist() if info.filename.startswith(("glacier_aws", "glacier_azure"))]
    assert {"glacier_aws/config.py", "glacier_azure/config.py", "glacier_aws-0.1.0.dist-info/entry_points.txt", "glacier_azure-0.1.0.dist-info/entry_points.txt"} <= {i.filename for i in plugins}
    assert not [i for i in plugins if "/testing/" in i.filename] and sum(i.file_size for i in plugins) < 1_000_000  # code only
