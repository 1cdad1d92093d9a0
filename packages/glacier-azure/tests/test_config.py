"""AzureConfig and AzureFunctionConfig: names, endpoints and Flex Consumption's limits, with errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from glacier.config import AzureConfig, AzureFunctionConfig


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"memory": 1024}, "memory=1024 MB is not a Flex Consumption instance size; allowed: 512, 2048, 4096 MB"),
        ({"timeout": 0}, "timeout=0 s is outside the allowed 1 to 14,400 s"),
        ({"timeout": 20_000}, "timeout=20000 s is outside the allowed 1 to 14,400 s"),
        ({"max_instances": 39}, "max_instances=39 is outside the allowed 40 to 1,000"),
        ({"max_instances": 1001}, "max_instances=1001 is outside the allowed 40 to 1,000"),
        ({"runtime": "3.9"}, "runtime='3.9' is not one of 3.11, 3.12, 3.13"),
        ({"max_dequeue_count": 0}, "max_dequeue_count=0 is outside the allowed 1 to 20"),
    ],
    ids=["memory", "timeout-low", "timeout-high", "instances-low", "instances-high", "runtime", "dequeues"],
)
def test_a_broken_limit_names_the_field_and_the_allowed_values(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        AzureFunctionConfig(**fields)
    assert str(raised.value) == f"AzureFunctionConfig: {message}"


@pytest.mark.parametrize("memory", [512, 2048, 4096])
def test_every_instance_size_is_accepted(memory: int) -> None:
    assert AzureFunctionConfig(memory=memory, timeout=14_400, max_instances=1000).memory == memory


@pytest.mark.parametrize("name", ["ab", "a" * 25, "My-Lake", "my_lake", "lakeé"])
def test_a_storage_account_name_is_checked(name: str) -> None:
    with pytest.raises(ValueError, match="storage_account=.* must be 3 to 24 lowercase letters and digits"):
        AzureConfig(storage_account=name)


def test_endpoints_default_to_the_accounts_own_and_service_endpoints_win() -> None:
    config = AzureConfig(storage_account="lake", endpoint_url="http://127.0.0.1:1/lake/", service_endpoints={"queue": "http://127.0.0.1:2/lake"})
    assert config.endpoint_for("blob") == "http://127.0.0.1:1/lake"
    assert config.endpoint_for("queue") == "http://127.0.0.1:2/lake"
    assert config.endpoint_for("dfs") == "https://lake.dfs.core.windows.net"


def test_the_plugin_lists_its_schemes_configs_executor_and_codegen_target() -> None:
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "glacier.cli", "plugins"], capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip("│ ").startswith("azure "))
    row = " ".join(lines[at : at + 2])  # rich wraps a long cell onto the next line
    for expected in ("glacier-azure", "az://", "abfs://", "abfss://", "AzureConfig", "azure-functions", "terraform-azure"):
        assert expected in row, (expected, proc.stdout)


def test_a_task_timeout_over_the_functions_is_a_problem_analyze_reports() -> None:
    from glacier import Provider
    from glacier.dag import TaskInstance

    provider = Provider(config=AzureConfig(storage_account="lake"))
    executor = provider.serverless(config=AzureFunctionConfig(timeout=600))
    bucket = provider.bucket(bucket="data", path="x.parquet")
    over_function = TaskInstance(task=executor.task(name="a", timeout=900)(lambda df: df), source=bucket, target=bucket, name="a")
    over_platform = TaskInstance(task=executor.task(name="b", timeout=20_000)(lambda df: df), source=bucket, target=bucket, name="b")
    assert executor.problems(over_function) == ["timeout=900s is over the function's AzureFunctionConfig(timeout=600); the Functions host stops it first"]
    assert executor.problems(over_platform) == ["timeout=20000s is over glacier-azure's limit of 14,400 s for a step"]
