"""Generated, built and deployed functions of Google Cloud and Azure reach S3 with their own identity and no AWS key.

The user's flow, on 127.0.0.1: generate the Terraform root for a one-step pipeline
between two S3 objects (tests/identity_pipeline.py on Cloud Functions,
tests/identity_pipeline_azure.py on Azure Functions), deploy the function from the
artifact the root points at in its platform's harness (functions-framework in a venv
built from the source zip's requirements; the Azure Functions worker that sees only the
unzipped artifact, triggered through Azurite's queues), run in cloud mode. The harnesses
leave out the settings Terraform fills from other blocks (``AWS_ROLE_ARN``, the token's
audience, the app's ``AZURE_CLIENT_ID``); the test stands in for them with a role it
creates on moto, and for the platform's identity service with
glacier_gcp.testing.metadata_server or glacier_azure.testing.identity_endpoint. The
functions get no AWS key: the only way they can read and write S3 is the web identity
Glacier sets up inside them. A third test deploys a Lambda function writing Azure Blob
(tests/identity_pipeline_lambda.py) in the real Lambda runtime client
(glacier_aws.testing.lambda_service): its client secret comes from Secrets Manager on
moto at run time, reaches the step's environment, and is in no log, record, manifest,
generated file or target.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from leaks import files_written, leaks

PIPELINE = Path(__file__).with_name("identity_pipeline.py")
VALUES = pl.DataFrame({"value": list(range(100))})


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import boto3

    from glacier.cli import load_pipeline
    from glacier_aws.testing.moto_server import moto_server
    from glacier_gcp.testing.functions_service import FunctionsService
    from glacier_gcp.testing.metadata_server import metadata_server

    work = tmp_path_factory.mktemp("identity-deployed")
    with (
        pytest.MonkeyPatch.context() as env,
        moto_server(log_dir=work) as moto,
        metadata_server(unique_id="104857600000000000009", email="identity-double@p.iam.gserviceaccount.com") as gce,
        FunctionsService() as functions,
    ):
        settings = {"MOTO": moto.endpoint, "FUNCTIONS": functions.endpoint, "GCP_PROJECT": "p", "RAW_BUCKET": f"raw-{uuid.uuid4().hex[:10]}"}
        # This machine's own calls (the test's and the orchestrator's) use moto's test keys.
        for key, value in {**settings, "AWS_ACCESS_KEY_ID": "orchestrator", "AWS_SECRET_ACCESS_KEY": "orchestrator", "GLACIER_STATE_DIR": str(work / "state")}.items():
            env.setenv(key, value)
        kw = {"endpoint_url": moto.endpoint, "region_name": "us-east-1"}
        boto3.client("s3", **kw).create_bucket(Bucket=settings["RAW_BUCKET"])
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "accounts.google.com"}, "Action": "sts:AssumeRoleWithWebIdentity"}]}
        role = boto3.client("iam", **kw).create_role(RoleName="identity-double-gcp", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

        out = work / "infra"
        generated = load_pipeline(f"{PIPELINE}:pipeline").run(mode="generate", out=out)
        # What Terraform fills from the role block, and what Cloud Run gives every function.
        federation = {"AWS_ROLE_ARN": role, "GLACIER_AWS_WEB_IDENTITY_AUDIENCE": "sts.amazonaws.com", "AWS_ENDPOINT_URL_STS": moto.endpoint,
                      "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", **gce.environment}  # fmt: skip
        urls = functions.deploy_terraform(out, environment={**settings, **federation})
        yield {"work": work, "manifest": str(out / "glacier-deployment.json"), "functions": functions, "gce": gce, "urls": urls,
               "generated": generated, "bucket": settings["RAW_BUCKET"], "s3": boto3.client("s3", **kw)}  # fmt: skip


def test_the_deployed_function_reads_and_writes_s3_as_its_federated_role(deployed: dict[str, Any]) -> None:
    from glacier.cli import load_pipeline

    (name,) = deployed["urls"]
    assert deployed["functions"].left_out[name] == ["AWS_ROLE_ARN", "GLACIER_AWS_WEB_IDENTITY_AUDIENCE"]
    environment = deployed["functions"].functions[name].environment
    assert not any(key.startswith("AWS_") and key not in ("AWS_ROLE_ARN", "AWS_ENDPOINT_URL_STS", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED") for key in environment)

    raw = io.BytesIO()
    VALUES.write_parquet(raw)
    deployed["s3"].put_object(Bucket=deployed["bucket"], Key="raw/values.parquet", Body=raw.getvalue())
    result = load_pipeline(f"{PIPELINE}:pipeline").run(mode="cloud", manifest=deployed["manifest"])
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed) + deployed["functions"].log(name)[-3000:]
    assert result["double"].executor == "cloudfunction" and deployed["functions"].invocations(name) == 1
    written = pl.read_parquet(deployed["s3"].get_object(Bucket=deployed["bucket"], Key="doubled/values.parquet")["Body"].read())
    assert written["doubled"].to_list() == [2 * v for v in range(100)]
    assert deployed["gce"].audiences == ["sts.amazonaws.com"], "the function asked its metadata server for one token, for AWS"


@pytest.fixture(scope="module")
def deployed_on_azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import boto3

    from glacier.cli import load_pipeline
    from glacier_aws.testing.moto_server import moto_server
    from glacier_azure.testing.azurite import Azurite
    from glacier_azure.testing.functions_host import FunctionsHost
    from glacier_azure.testing.identity_endpoint import identity_endpoint

    work = tmp_path_factory.mktemp("identity-deployed-azure")
    with (
        pytest.MonkeyPatch.context() as env,
        moto_server(log_dir=work) as moto,
        Azurite(log_dir=work) as azurite,
        identity_endpoint(principal_id="object-id-of-the-app") as msi,
        FunctionsHost(azurite.connection_string, work / "functions-host") as host,
    ):
        settings = {"MOTO": moto.endpoint, "AZURITE_BLOB": azurite.blob_endpoint, "AZURITE_QUEUE": azurite.queue_endpoint, "RAW_BUCKET": f"raw-{uuid.uuid4().hex[:10]}"}
        here = {**settings, **azurite.environment(), "AWS_ACCESS_KEY_ID": "orchestrator", "AWS_SECRET_ACCESS_KEY": "orchestrator", "GLACIER_STATE_DIR": str(work / "state")}
        for key, value in here.items():
            env.setenv(key, value)
        env.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
        kw = {"endpoint_url": moto.endpoint, "region_name": "us-east-1"}
        boto3.client("s3", **kw).create_bucket(Bucket=settings["RAW_BUCKET"])
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/sts.windows.net/t/"}, "Action": "sts:AssumeRoleWithWebIdentity"}]}
        role = boto3.client("iam", **kw).create_role(RoleName="identity-azure-double-azure", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

        out = work / "infra"
        generated = load_pipeline(f"{PIPELINE.with_name('identity_pipeline_azure.py')}:pipeline").run(mode="generate", out=out)
        # What Terraform fills from the role and identity blocks, and what App Service gives every app.
        federation = {"AWS_ROLE_ARN": role, "GLACIER_AWS_WEB_IDENTITY_AUDIENCE": "api://AzureADTokenExchange", "AWS_ENDPOINT_URL_STS": moto.endpoint,
                      "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "WEBSITE_SITE_NAME": "identity-azure-double", **msi.environment}  # fmt: skip
        apps = host.deploy_terraform(out, {**settings, **azurite.environment(), **federation})
        yield {"work": work, "manifest": str(out / "glacier-deployment.json"), "host": host, "msi": msi, "apps": apps,
               "generated": generated, "bucket": settings["RAW_BUCKET"], "s3": boto3.client("s3", **kw)}  # fmt: skip


def test_the_deployed_azure_function_reads_and_writes_s3_as_the_role_its_managed_identity_assumes(deployed_on_azure: dict[str, Any]) -> None:
    from glacier.cli import load_pipeline

    deployed = deployed_on_azure
    (name,) = deployed["apps"]
    assert {"AWS_ROLE_ARN", "GLACIER_AWS_WEB_IDENTITY_AUDIENCE", "AZURE_CLIENT_ID"} <= set(deployed["host"].left_out[name])
    raw = io.BytesIO()
    VALUES.write_parquet(raw)
    deployed["s3"].put_object(Bucket=deployed["bucket"], Key="raw/values.parquet", Body=raw.getvalue())
    result = load_pipeline(f"{PIPELINE.with_name('identity_pipeline_azure.py')}:pipeline").run(mode="cloud", manifest=deployed["manifest"])
    log = (deployed["host"].log_dir / f"{name}.log").read_text(errors="replace") if (deployed["host"].log_dir / f"{name}.log").exists() else ""
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed) + log[-3000:]
    assert result["double"].executor == "azure-functions"
    written = pl.read_parquet(deployed["s3"].get_object(Bucket=deployed["bucket"], Key="doubled-on-azure/values.parquet")["Body"].read())
    assert written["doubled"].to_list() == [2 * v for v in range(100)]
    assert deployed["msi"].resources == ["api://AzureADTokenExchange"], "the app asked its identity endpoint for one token, for AWS"


#: The Entra application's client secret, as the operator puts it in after terraform apply.
CLIENT_SECRET = f"entra-client-secret-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def deployed_on_lambda(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import boto3

    from glacier.cli import load_pipeline
    from glacier_aws.testing.lambda_service import LambdaService
    from glacier_aws.testing.moto_server import moto_server
    from glacier_azure.testing.azurite import Azurite

    work = tmp_path_factory.mktemp("identity-deployed-lambda")
    with (
        pytest.MonkeyPatch.context() as env,
        moto_server(log_dir=work) as moto,
        Azurite(log_dir=work) as azurite,
        LambdaService() as lambdas,
    ):
        suffix = uuid.uuid4().hex[:10]
        settings = {"MOTO": moto.endpoint, "LAMBDA": lambdas.endpoint_url, "AZURITE_BLOB": azurite.blob_endpoint, "RAW_BUCKET": f"raw-{suffix}", "LAKE_CONTAINER": f"lake-{suffix}"}
        keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
        for key, value in {**settings, **keys, **azurite.environment(), "GLACIER_STATE_DIR": str(work / "state")}.items():
            env.setenv(key, value)
        env.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
        kw = {"endpoint_url": moto.endpoint, "region_name": "us-east-1"}
        boto3.client("s3", **kw).create_bucket(Bucket=settings["RAW_BUCKET"])
        azurite.create_container(settings["LAKE_CONTAINER"])
        arn = boto3.client("secretsmanager", **kw).create_secret(Name="glacier/identity-lambda-stamp/azure-client-secret", SecretString=CLIENT_SECRET)["ARN"]

        out = work / "infra"
        generated = load_pipeline(f"{PIPELINE.with_name('identity_pipeline_lambda.py')}:pipeline").run(mode="generate", out=out)
        # What Terraform fills from other blocks: the Entra application's ids, the secret's ARN (never its value).
        # Azurite takes only its account key, so that stands in for the Entra token the secret would get.
        federation = {"AZURE_CLIENT_ID": "app-client-id", "AZURE_TENANT_ID": "tenant-id", "GLACIER_AZURE_CLIENT_SECRET_ARN": arn, "AWS_ENDPOINT_URL": moto.endpoint}
        names = lambdas.deploy_terraform(out, environment={**settings, **keys, **azurite.environment(), **federation})
        yield {"work": work, "out": out, "manifest": str(out / "glacier-deployment.json"), "lambdas": lambdas, "names": names, "azurite": azurite,
               "generated": generated, "bucket": settings["RAW_BUCKET"], "container": settings["LAKE_CONTAINER"], "s3": boto3.client("s3", **kw)}  # fmt: skip


def test_the_deployed_lambda_reads_its_client_secret_at_run_time_and_writes_it_nowhere(deployed_on_lambda: dict[str, Any]) -> None:
    import hashlib

    from azure.storage.blob import BlobServiceClient

    from glacier.cli import load_pipeline

    deployed = deployed_on_lambda
    (name,) = deployed["names"]
    assert deployed["lambdas"].left_out[name] == ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "GLACIER_AZURE_CLIENT_SECRET_ARN"]
    raw = io.BytesIO()
    VALUES.write_parquet(raw)
    deployed["s3"].put_object(Bucket=deployed["bucket"], Key="raw/values.parquet", Body=raw.getvalue())
    result = load_pipeline(f"{PIPELINE.with_name('identity_pipeline_lambda.py')}:pipeline").run(mode="cloud", manifest=deployed["manifest"])
    log = deployed["lambdas"].log_path(name).read_bytes()
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed) + log[-3000:].decode(errors="replace")
    with BlobServiceClient.from_connection_string(deployed["azurite"].connection_string) as blobs:
        data = blobs.get_container_client(deployed["container"]).download_blob("stamped/values.parquet").readall()
    stamped = pl.read_parquet(io.BytesIO(data))
    assert stamped["secret_sha256"].unique().to_list() == [hashlib.sha256(CLIENT_SECRET.encode()).hexdigest()], "the secret reached the step's environment"
    import os

    # Run records (this test's state), manifests (the fixture's), the generated root.
    written = {"lambda log": log, "target": data, **files_written(Path(os.environ["GLACIER_STATE_DIR"]), deployed["work"] / "state", deployed["out"])}
    assert any("runs" in name and name.endswith(".json") for name in written), sorted(written)
    found = leaks((CLIENT_SECRET,), written)
    assert not found, f"the client secret was written to {found}"
