"""The Azure Functions executor's own errors, against Azurite's queues with no function app consuming them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from glacier import Provider
from glacier.config import AzureConfig, AzureFunctionConfig
from glacier.errors import StepError, StepTimeoutError
from glacier.plugins import DeploymentEntry
from glacier_azure.testing.azurite import Azurite


def _payload(**extra: Any) -> dict[str, Any]:
    return {"protocol": 1, "run_id": "r", "step": "s", "attempt": 1, "target": {"uri": "az://c/t.parquet"}, **extra}


@pytest.fixture
def executor(azure_config: AzureConfig) -> Any:
    return Provider(config=azure_config).serverless(config=AzureFunctionConfig(timeout=60))


def test_a_queue_that_does_not_exist_says_to_deploy(executor: Any) -> None:
    entry = DeploymentEntry("missing-app", "m", "q", "azure", "azure-functions", {"queue": "missing-app", "timeout": "1"})
    with pytest.raises(StepError, match="the queue 'missing-app' of Azure Function app 'missing-app' does not exist") as raised:
        executor.invoke_function(entry, _payload())
    assert "terraform apply" in (raised.value.hint or "")


def test_a_message_no_app_picks_up_times_out_naming_the_queue(executor: Any, azurite: Azurite) -> None:
    queue = f"idle-{uuid.uuid4().hex[:8]}"
    azurite.create_queue(queue)
    entry = DeploymentEntry(queue, "m", "q", "azure", "azure-functions", {"queue": queue, "timeout": "1", "pickup_margin_s": "1"})
    with pytest.raises(StepTimeoutError, match=f"no result from Azure Function app '{queue}' within its timeout of 1s \\(plus 1s to be picked up\\); the message stays on queue {queue}"):
        executor.invoke_function(entry, _payload())


def test_a_payload_over_a_queue_messages_size_is_refused_before_sending(executor: Any) -> None:
    entry = DeploymentEntry("app", "m", "q", "azure", "azure-functions", {"queue": "app"})
    sources = {f"s{i}": {"uri": f"az://lake/part-{i:05d}.parquet", "config": None} for i in range(1500)}
    with pytest.raises(StepError, match="over what one Storage queue message holds"):
        executor.invoke_function(entry, _payload(sources=sources))
