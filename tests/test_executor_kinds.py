"""An executor kind belongs to its provider: another provider cannot make it."""

from __future__ import annotations

import pytest

from glacier import Provider
from glacier.config import AwsConfig, LambdaConfig, LocalConfig, ProcessConfig
from glacier.errors import PipelineDefinitionError


def test_a_provider_refuses_another_providers_serverless_config(tmp_path) -> None:  # noqa: ANN001
    local = Provider(config=LocalConfig(root=str(tmp_path)))
    with pytest.raises(PipelineDefinitionError, match=r"(?s)LambdaConfig.*'lambda'.*provider 'aws'.*provider 'local'.*Hint: .*'aws' provider.*\(ProcessConfig\)") as info:
        local.serverless(config=LambdaConfig())
    assert isinstance(info.value, ValueError)


def test_the_aws_provider_refuses_the_local_worker_config() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"ProcessConfig.*'process'.*provider 'local'.*provider 'aws'"):
        Provider(config=AwsConfig(region="us-east-1")).serverless(config=ProcessConfig())


def test_each_provider_makes_its_own_kinds() -> None:
    assert Provider(config=AwsConfig(region="us-east-1")).serverless(config=LambdaConfig()).kind == "lambda"
    assert Provider(config=LocalConfig(root="memory://")).serverless(config=ProcessConfig()).kind == "process"


def test_a_kind_for_any_provider_is_made_by_every_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    from glacier.plugins import registry
    from glacier.plugins.registry import ExecutorKind

    anywhere = ExecutorKind("process", "glacier_local.executor:ProcessExecutor", config="glacier_local.config:ProcessConfig", provider=None)
    monkeypatch.setattr(registry, "executor_kinds", lambda: {"process": anywhere})
    assert Provider(config=AwsConfig(region="us-east-1")).serverless(config=ProcessConfig()).kind == "process"


def test_the_plugin_docs_say_a_second_scheme_claim_raises_unless_it_overrides() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    section = text.split("### glacier_storage_schemes", 1)[1].split("\n### ", 1)[0]
    assert "is ignored" not in section
    assert "PluginConflictError" in section and "override=True" in section
