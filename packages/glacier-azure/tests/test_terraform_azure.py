"""The generated Terraform (azurerm): what it declares, that it loads and passes checkov, and that every identity matches the access model."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from glacier.cli import load_pipeline

PIPELINE = '''
from glacier import Pipeline, Provider
from glacier.config import AzureConfig, AzureFunctionConfig
from glacier.testing import tasks

azure = Provider(config=AzureConfig(storage_account="mylake", resource_group="data", location="westeurope"))
big = azure.serverless(config=AzureFunctionConfig(memory=4096, timeout=3600, max_instances=50, runtime="{runtime}"))
small = azure.serverless(config=AzureFunctionConfig(memory=2048, timeout=600, runtime="{runtime}", environment={{"MODE": "x"}}))
double_value = big.task()(tasks.double_value)
join_by_id = small.task(cache=True)(tasks.join_by_id)

raw = azure.bucket(bucket="lake", path="raw/*.parquet")
ref = azure.bucket(bucket="lake", path="ref/ids.parquet")
doubled = azure.bucket(bucket="lake", path="stage/doubled.parquet")
joined = azure.bucket(bucket="reports", path="joined.parquet")
doubling = Pipeline(name="doubling").source(raw).transform(double_value).to(doubled)
joining = Pipeline(name="joining").sources({{"left": doubled, "right": ref}}).transform(join_by_id).to(joined)
pipeline = Pipeline.compose(doubling, joining, name="contract")
'''


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    import sys

    folder = tmp_path_factory.mktemp("azure-generate")
    file = folder / "azure_pipeline.py"
    file.write_text(textwrap.dedent(PIPELINE.format(runtime=f"3.{sys.version_info.minor}")))
    pipeline = load_pipeline(f"{file}:pipeline")
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
