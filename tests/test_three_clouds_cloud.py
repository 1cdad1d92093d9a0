"""One pipeline over the three clouds in cloud mode: each step in its own platform's harness, from its built artifact.

The pipeline (tests/multicloud_pipeline.py) is the multi-cloud shape of the docs: raw
events on S3, a Lambda step to GCS, a Cloud Functions step joining reference data from
Azure Blob, an Azure Functions aggregate, and a report step on this machine. Everything
it talks to runs on 127.0.0.1 and is started once for this module:

- storage: moto's S3 server, fake-gcs-server and Azurite (Blob and Queue);
- functions: LambdaService (the real awslambdaric runtime client), FunctionsService
  (functions-framework, in a venv built from the source zip's requirements) and
  FunctionsHost (the artifact's ``function_app.py`` in a worker that sees only the
  unzipped artifact, triggered by Azurite's queues).

The flow is the user's: generate one Terraform root, deploy each function from the
artifact that root points at, run in cloud mode, compare with plain polars.

What an emulator cannot do: federate. In the clouds each function reaches the other
clouds' buckets as its own federated identity, whose ids Terraform fills in from the
identity blocks it creates (see docs/multicloud.md). No emulator issues or trusts such
identities, so each harness leaves those settings out (they are listed in its
``left_out``, and the first test checks that exactly the federation settings were) and
every function gets the emulators' own stand-in credentials instead: moto's test keys,
Azurite's well-known key, and fake-gcs-server, which needs none.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from leaks import files_written, leaks
from polars.testing import assert_frame_equal

from glacier import StepStatus
from glacier.errors import TaskFailedError
from glacier.testing import sample_frame

PIPELINE = Path(__file__).with_name("multicloud_pipeline.py")
CATEGORIES = pl.DataFrame({"category": [f"c{i}" for i in range(5)], "rank": [3, 1, 4, 1, 5]})
EVENTS = sample_frame(30_000)

#: A recognisable secret: moto takes any key, so the AWS stand-in's is this one.
PLANTED = f"planted-aws-secret-{uuid.uuid4().hex}"

#: The emulators' stand-ins for each function's identity, and no way to Google's metadata server.
STAND_IN_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": PLANTED, "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_ROOT": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
    "NO_GCE_CHECK": "True", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
}  # fmt: skip


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The three stores and the three function platforms, the pipeline generated once and every function deployed."""
    import boto3

    from glacier.cli import load_pipeline
    from glacier_aws.testing.lambda_service import LambdaService
    from glacier_aws.testing.moto_server import moto_server
    from glacier_azure.testing.azurite import Azurite
    from glacier_azure.testing.functions_host import FunctionsHost
    from glacier_gcp.testing.functions_service import FunctionsService
    from glacier_gcp.testing.gcs_server import FakeGcsServer

    work = tmp_path_factory.mktemp("three-clouds-cloud")
    suffix = uuid.uuid4().hex[:10]
    with (
        pytest.MonkeyPatch.context() as env,
        moto_server(log_dir=work) as moto,
        FakeGcsServer() as gcs,
        Azurite(log_dir=work) as azurite,
        LambdaService() as lambdas,
        FunctionsService() as functions,
        FunctionsHost(azurite.connection_string, work / "functions-host") as host,
    ):
        # Where the module finds the clouds: here, and in every function (given at deploy time).
        settings = {
            "MOTO": moto.endpoint, "LAMBDA": lambdas.endpoint_url,
            "GCP_PROJECT": gcs.project, "GCS": gcs.endpoint, "FUNCTIONS": functions.endpoint,
            "AZURITE_BLOB": azurite.blob_endpoint, "AZURITE_QUEUE": azurite.queue_endpoint,
            "RAW_BUCKET": f"raw-{suffix}", "MID_BUCKET": f"mid-{suffix}", "LAKE_CONTAINER": f"lake-{suffix}",
        }  # fmt: skip
        stand_ins = {**STAND_IN_CREDENTIALS, **azurite.environment()}
        for key, value in {**settings, **stand_ins, "REPORT_ROOT": str(work / "here"), "CLOUDSDK_CONFIG": str(work / "gcloud")}.items():
            env.setenv(key, value)
        for key in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "AZURE_STORAGE_CONNECTION_STRING"):
            env.delenv(key, raising=False)
        env.setenv("GLACIER_STATE_DIR", str(work / "state"))
        boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1").create_bucket(Bucket=settings["RAW_BUCKET"])
        gcs.create_bucket(settings["MID_BUCKET"])
        azurite.create_container(settings["LAKE_CONTAINER"])

        out = work / "infra"
        generated = load_pipeline(f"{PIPELINE}:pipeline").run(mode="generate", out=out)
        deployed = {
            "lambda": lambdas.deploy_terraform(out, environment={**settings, **stand_ins}),
            "cloudfunction": sorted(functions.deploy_terraform(out, environment={**settings, **stand_ins})),
            "azure-functions": sorted(host.deploy_terraform(out, {**settings, **stand_ins})),
        }
        yield {
            "work": work, "azurite": azurite,
            "out": out, "manifest": str(out / "glacier-deployment.json"), "functions": generated.manifest["functions"],
            "deployed": deployed, "report": work / "here" / "reports" / "totals.parquet",
            "harnesses": {"lambda": lambdas, "cloudfunction": functions, "azure-functions": host},
        }  # fmt: skip


def load(deployed: dict[str, Any], categories: pl.DataFrame) -> Any:
    """The pipeline as the CLI loads it, with fresh events on S3 and ``categories`` on Azure."""
    from glacier.cli import load_pipeline

    pipeline = load_pipeline(f"{PIPELINE}:pipeline")
    steps = {step.name: step for step in pipeline.build().topological_sort()}
    events, reference = steps["clean_events"].sources["df"], steps["join_reference"].sources["categories_df"]
    events.storage.write(EVENTS, events.uri)
    reference.storage.write(categories, reference.uri)
    return pipeline


def invocations(deployed: dict[str, Any]) -> dict[str, int]:
    """How many times each function has run so far, by step."""
    return {step: deployed["harnesses"][entry["executor"]].invocations(entry["function_name"]) for step, entry in deployed["functions"].items()}


def expected() -> pl.DataFrame:
    """The same work in plain polars."""
    totals = (
        EVENTS.filter(pl.col("value").is_not_null()).join(CATEGORIES, on="category")
        .group_by("category", "rank").agg(pl.col("value").sum(), pl.len().alias("events")).sort("category")
    )  # fmt: skip
    return totals.with_columns(share=pl.col("events") / pl.col("events").sum())


def test_each_cloud_step_runs_in_its_own_platform_from_its_artifact_and_the_result_equals_plain_polars(deployed: dict[str, Any]) -> None:
    assert deployed["deployed"] == {
        "lambda": ["three-clouds-clean-events"],
        "cloudfunction": ["three-clouds-join-reference"],
        "azure-functions": ["three-clouds-aggregate"],
    }
    # The harnesses left out only what Terraform fills from the identity blocks it creates.
    harness = deployed["harnesses"]
    assert harness["lambda"].left_out["three-clouds-clean-events"] == ["GLACIER_GCP_CREDENTIAL_CONFIG"]
    assert harness["cloudfunction"].left_out["three-clouds-join-reference"] == ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "GLACIER_AZURE_FEDERATED_AUDIENCE"]
    assert harness["azure-functions"].left_out["three-clouds-aggregate"] == [
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "AZURE_CLIENT_ID", "AzureWebJobsStorage__clientId", "GLACIER_STORAGE__clientId",
    ]  # fmt: skip

    pipeline = load(deployed, CATEGORIES)
    before = invocations(deployed)
    result = pipeline.run(mode="cloud", manifest=deployed["manifest"])
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    assert {name: step.executor for name, step in result.steps.items()} == {
        "clean_events": "lambda", "join_reference": "cloudfunction", "aggregate": "azure-functions", "report_totals": "local",
    }  # fmt: skip
    after = invocations(deployed)
    assert {step: after[step] - before[step] for step in after} == {"clean_events": 1, "join_reference": 1, "aggregate": 1}
    assert_frame_equal(pl.read_parquet(deployed["report"]), expected(), check_row_order=False)
    # Each hand-off is a real object in its own cloud's store, written by the function of another cloud.
    steps = {step.name: step for step in pipeline.build().topological_sort()}
    for name in ("clean_events", "join_reference", "aggregate"):
        target = steps[name].target
        assert target.storage.exists(target.uri), target.uri
    assert result["clean_events"].rows == EVENTS["value"].is_not_null().sum()


def test_bad_data_in_the_middle_cloud_stops_only_what_depends_on_it_and_resume_goes_on_after_the_fix(deployed: dict[str, Any]) -> None:
    # Azure's reference data names c2 twice: the Cloud Functions step refuses to join it.
    pipeline = load(deployed, pl.concat([CATEGORIES, pl.DataFrame({"category": ["c2"], "rank": [9]})]))
    before = invocations(deployed)
    failed = pipeline.run(mode="cloud", manifest=deployed["manifest"])
    assert {name: step.status for name, step in failed.steps.items()} == {
        "clean_events": StepStatus.SUCCEEDED, "join_reference": StepStatus.FAILED,
        "aggregate": StepStatus.SKIPPED, "report_totals": StepStatus.SKIPPED,
    }  # fmt: skip
    error = failed["join_reference"].error
    assert isinstance(error, TaskFailedError)
    assert "reference data names categories more than once: c2" in str(error)
    assert "(in Cloud Function 'three-clouds-join-reference')" in str(error)
    middle = invocations(deployed)
    assert {step: middle[step] - before[step] for step in middle} == {"clean_events": 1, "join_reference": 1, "aggregate": 0}

    # The fix is in the data: the reference names each category once again.
    steps = {step.name: step for step in pipeline.build().topological_sort()}
    reference = steps["join_reference"].sources["categories_df"]
    reference.storage.write(CATEGORIES, reference.uri)
    resumed = pipeline.run(mode="cloud", manifest=deployed["manifest"], resume=True)
    assert resumed.ok, resumed.summary() + "\n" + "\n".join(str(s.error) for s in resumed.failed)
    assert {name: step.status for name, step in resumed.steps.items()} == {
        "clean_events": StepStatus.REUSED, "join_reference": StepStatus.SUCCEEDED,
        "aggregate": StepStatus.SUCCEEDED, "report_totals": StepStatus.SUCCEEDED,
    }  # fmt: skip
    after = invocations(deployed)
    assert {step: after[step] - middle[step] for step in after} == {"clean_events": 0, "join_reference": 1, "aggregate": 1}
    assert_frame_equal(pl.read_parquet(deployed["report"]), expected(), check_row_order=False)


def test_no_credential_of_the_stand_ins_is_in_a_record_a_result_a_log_or_the_generated_files(deployed: dict[str, Any]) -> None:
    """Each function had the AWS key and Azurite's key in its environment; none of them wrote one anywhere."""
    import os

    from azure.storage.blob import BlobServiceClient

    from glacier_azure.testing.azurite import ACCOUNT_KEY

    pipeline = load(deployed, CATEGORIES)
    result = pipeline.run(mode="cloud", manifest=deployed["manifest"])
    assert result.ok, result.summary()
    harness = deployed["harnesses"]
    # Run records and manifests (this test's state and the module's), the generated root, the report.
    written = files_written(Path(os.environ["GLACIER_STATE_DIR"]), deployed["work"] / "state", deployed["out"], deployed["work"] / "here")
    # What each function printed, and every result object the Azure function left for the orchestrator.
    written["lambda log"] = harness["lambda"].log_path("three-clouds-clean-events").read_bytes()
    written["cloud function log"] = harness["cloudfunction"].log("three-clouds-join-reference").encode()
    written["azure function log"] = (harness["azure-functions"].log_dir / "three-clouds-aggregate.log").read_bytes()
    with BlobServiceClient.from_connection_string(deployed["azurite"].connection_string) as blobs:
        results = blobs.get_container_client("glacier-results")
        for blob in results.list_blobs():
            written[f"az://glacier-results/{blob.name}"] = results.download_blob(blob.name).readall()
    assert any(name.startswith("az://glacier-results/") for name in written), "the Azure function left no result to search"
    assert any(name.endswith(".json") and "runs" in name for name in written), sorted(written)
    found = leaks((PLANTED, ACCOUNT_KEY), written)
    assert not found, f"a stand-in credential was written to {found}"
