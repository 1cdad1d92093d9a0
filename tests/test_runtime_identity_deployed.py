"""A generated, built and deployed Cloud Function reaches S3 with its own Google identity and no AWS key.

The user's flow, on 127.0.0.1: generate the Terraform root for tests/identity_pipeline.py
(one Cloud Functions step between two S3 objects), deploy the function from the source
zip the root points at in functions-framework (glacier_gcp.testing.functions_service,
in a venv built from the zip's requirements), run in cloud mode. The harness leaves out
the settings Terraform fills from the AWS side's role block (``AWS_ROLE_ARN`` and the
token's audience); the test stands in for them with a role it creates on moto, and for
Google's metadata server with glacier_gcp.testing.metadata_server. The function gets
no AWS key: the only way it can read and write S3 is the web identity Glacier sets up
inside it.
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
