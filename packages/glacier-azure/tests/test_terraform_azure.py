"""The generated Terraform (azurerm): what it declares, that it loads and passes checkov, and that every identity matches the access model."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from glacier.cli import load_pipeline

from .fixtures import GENERATED_PIPELINE



@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    import sys

    folder = tmp_path_factory.mktemp("azure-generate")
    file = folder / "azure_pipeline.py"
    file.write_text(textwrap.dedent(GENERATED_PIPELINE.format(runtime=f"3.{sys.version_info.minor}")))
    pipeline = load_pipeline(f"{file}:pipeline")
    with pytest.MonkeyPatch.context() as mp:  # the manifest's copy goes to a state dir of the module's own
        mp.setenv("GLACIER_STATE_DIR", str(folder / "state"))
        result = pipeline.run(mode="generate", out=folder / "infra")
    return folder / "infra", (pipeline, result)


def _main(generated: tuple[Path, Any]) -> dict[str, Any]:
    import hcl2

    with (generated[0] / "main.tf").open() as fh:
        data: dict[str, Any] = hcl2.load(fh)
    return data


def _resources(main: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    from glacier.testing.terraform import blocks, unquote

    return {name: unquote(body) for name, body in blocks(main, "resource", kind).items()}


def test_the_manifest_names_each_function_app_its_queue_and_logs(generated: tuple[Path, Any]) -> None:
    manifest = generated[1][1].manifest["functions"]
    assert set(manifest) == {"double_value", "join_by_id"}
    entry = manifest["double_value"]
    assert entry["provider"] == "azure" and entry["executor"] == "azure-functions"
    assert entry["extras"]["queue"] == entry["function_name"] and entry["extras"]["timeout"] == "3600"
    assert "Application Insights" in entry["extras"]["logs"]


def test_function_apps_have_their_memory_timeout_instances_and_no_secret(generated: tuple[Path, Any]) -> None:
    main = _main(generated)
    apps = _resources(main, "azurerm_function_app_flex_consumption")
    assert len(apps) == 2
    by_task = {body["tags"]["glacier-task"]: body for body in apps.values()}
    big, small = by_task["double_value"], by_task["join_by_id"]
    assert (big["instance_memory_in_mb"], big["maximum_instance_count"]) == (4096, 50)
    assert big["app_settings"]["AzureFunctionsJobHost__functionTimeout"] == "01:00:00"
    assert small["app_settings"]["AzureFunctionsJobHost__functionTimeout"] == "00:10:00" and small["app_settings"]["MODE"] == "x"
    assert big["app_settings"]["GLACIER_TASK"] == "glacier.testing.tasks:double_value"
    assert big["storage_authentication_type"] == "UserAssignedIdentity"
    text = (generated[0] / "main.tf").read_text()
    import re

    assert "AccountKey" not in text and "primary_access_key" not in text  # no storage key anywhere
    assert not re.findall(r"^\s*(storage_access_key|connection_string|storage_account_access_key)\s*=", text, re.MULTILINE)


def test_storage_accounts_are_hardened(generated: tuple[Path, Any]) -> None:
    accounts = _resources(_main(generated), "azurerm_storage_account")
    assert {body["name"] for body in accounts.values()} >= {"mylake"}
    for body in accounts.values():
        assert body["min_tls_version"] == "TLS1_2" and body["https_traffic_only_enabled"] is True
        assert body["allow_nested_items_to_be_public"] is False and body["shared_access_key_enabled"] is False
        props = body["blob_properties"][0] if isinstance(body["blob_properties"], list) else body["blob_properties"]
        assert props["versioning_enabled"] is True and props["delete_retention_policy"]


def test_generated_terraform_loads(generated: tuple[Path, Any]) -> None:
    from glacier.testing.terraform import assert_terraform_loads

    assert_terraform_loads(generated[0])


def test_generated_terraform_passes_checkov(generated: tuple[Path, Any]) -> None:
    from glacier.testing.terraform import assert_checkov_passes

    assert_checkov_passes(generated[0])


def test_every_identity_matches_the_access_model(generated: tuple[Path, Any]) -> None:
    from glacier_azure.testing.roles import role_problems

    assert role_problems(generated[0], generated[1][0]) == []


def test_the_access_check_finds_a_grant_too_wide(generated: tuple[Path, Any], tmp_path: Path) -> None:
    """The check can fail: a condition loosened by hand is reported."""
    import shutil

    from glacier_azure.testing.roles import role_problems

    copy = tmp_path / "infra"
    shutil.copytree(generated[0], copy)
    text = (copy / "main.tf").read_text()
    assert "StringLike 'raw/*.parquet'" in text
    (copy / "main.tf").write_text(text.replace("StringLike 'raw/*.parquet'", "StringLike '*'"))
    problems = role_problems(copy, generated[1][0])
    assert any("read of az://lake/glacier-probe/other.parquet is allowed but no step needs it" in p for p in problems), problems


MIXED = '''
import sys
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, AzureFunctionConfig, LambdaConfig
from glacier.testing import tasks

aws = Provider(config=AwsConfig(region="eu-west-1"))
azure = Provider(config=AzureConfig(storage_account="mylake", location="westeurope"))
on_lambda = aws.serverless(config=LambdaConfig(runtime=f"python3.{{sys.version_info.minor}}", architecture="{arch}"))
on_azure = azure.serverless(config=AzureFunctionConfig(runtime=f"3.{{sys.version_info.minor}}"))
double_value = on_lambda.task()(tasks.double_value)
join_by_id = on_azure.task()(tasks.join_by_id)
raw = aws.bucket(bucket="aws-lake", path="raw.parquet")
doubled = azure.bucket(bucket="lake", path="doubled.parquet")
ref = azure.bucket(bucket="lake", path="ref.parquet")
joined = azure.bucket(bucket="reports", path="joined.parquet")
pipeline = Pipeline.compose(
    Pipeline(name="a").source(raw).transform(double_value).to(doubled),
    Pipeline(name="b").sources({{"left": doubled, "right": ref}}).transform(join_by_id).to(joined),
    name="mixed",
)
'''


def test_aws_and_azure_generate_one_root_module_that_loads_and_passes_checkov(tmp_path: Path) -> None:
    import platform

    from glacier.testing.terraform import assert_checkov_passes, assert_terraform_loads

    file = tmp_path / "mixed.py"
    file.write_text(textwrap.dedent(MIXED.format(arch="arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64")))
    result = load_pipeline(f"{file}:pipeline").run(mode="generate", out=tmp_path / "infra")
    assert sorted(result.providers) == ["aws", "azure"]
    assert {e["provider"] for e in result.manifest["functions"].values()} == {"aws", "azure"}
    text = (tmp_path / "infra" / "main.tf").read_text()
    assert 'variable "aws_region"' in text and 'variable "azure_location"' in text
    assert_terraform_loads(tmp_path / "infra")
    assert_checkov_passes(tmp_path / "infra")
