"""The Cloud Functions executor's own errors: no URL, no function, no ID token; nothing reaches Google."""

from __future__ import annotations

import pytest

from glacier import Provider
from glacier.config import CloudFunctionConfig, GcpConfig
from glacier.errors import StepError
from glacier.plugins import DeploymentEntry
from glacier_gcp.testing.functions_service import FunctionsService


@pytest.fixture
def executor() -> object:
    return Provider(config=GcpConfig(project="p", region="europe-west1")).serverless(config=CloudFunctionConfig(timeout=30))


def payload() -> dict[str, object]:
    return {"step": "transform", "target": {"uri": "gs://lake/out.parquet"}}


def test_an_https_url_without_credentials_asks_for_a_service_accounts(executor: object) -> None:
    """No ADC file and the metadata server on a closed port: the error says how to get an ID token."""
    entry = DeploymentEntry("etl-transform", "etl", "transform", "gcp", "cloudfunction", {"url": "https://europe-west1-p.cloudfunctions.net/etl-transform"})
    with pytest.raises(StepError, match="cannot get a Google ID token") as raised:
        executor.invoke_function(entry, payload())  # type: ignore[attr-defined]
    assert "GOOGLE_APPLICATION_CREDENTIALS" in (raised.value.hint or "")


def test_a_function_that_does_not_exist_says_to_deploy(executor: object) -> None:
    with FunctionsService() as service:
        entry = DeploymentEntry("etl-gone", "etl", "transform", "gcp", "cloudfunction", {"url": f"{service.endpoint}/etl-gone"})
        with pytest.raises(StepError, match=r"Cloud Function 'etl-gone' does not exist .*HTTP 404") as raised:
            executor.invoke_function(entry, payload())  # type: ignore[attr-defined]
    assert "terraform apply" in (raised.value.hint or "")


def test_a_manifest_entry_without_a_url_says_to_generate_again(executor: object) -> None:
    entry = DeploymentEntry("etl-transform", "etl", "transform", "gcp", "cloudfunction", {})
    with pytest.raises(StepError, match="gives no URL for Cloud Function 'etl-transform'"):
        executor.invoke_function(entry, payload())  # type: ignore[attr-defined]
