"""Inside a deployed function, its own identity becomes credentials for other clouds, with no key anywhere.

Each test runs the function's side in a new process with a clean environment (only
what the generated infrastructure and the platform would set), because google-auth
reads its metadata server's address when it is imported. The platform's identity
services are local stand-ins on 127.0.0.1: Google's metadata server
(:mod:`glacier_gcp.testing.metadata_server`), Azure's managed identity endpoint
(:mod:`glacier_azure.testing.identity_endpoint`), and moto's server for STS, S3 and
Secrets Manager (moto's STS accepts any web identity token). Entra's token exchange
itself cannot run here: azure-identity refuses an authority that is not ``https``, so
the Azure-bound tests stop at the token file and the variables azure-identity reads.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest

from glacier.plugins.identity import jwt_claims
from glacier.plugins.serialization import config_to_dict
from glacier_aws.config import AwsConfig
from glacier_aws.testing.moto_server import MotoServer, moto_server
from glacier_azure.testing.identity_endpoint import identity_endpoint
from glacier_gcp.infra.federation import credential_config
from glacier_gcp.testing.metadata_server import metadata_server

TASK = "glacier.testing.tasks:double_value"
#: Nothing answers here: no test reaches a real metadata server.
OFFLINE = {"GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_ROOT": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}
POOL = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/glacier-etl/providers/aws"
ACCOUNT = "double-value-aws@project.iam.gserviceaccount.com"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A function's environment: nothing of this machine's credentials, only what is given."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ["PATH"], "HOME": str(home), "NO_GCE_CHECK": "True", **OFFLINE,
        "AWS_EC2_METADATA_DISABLED": "true", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "GLACIER_IDENTITY_DIR": str(tmp_path / "identity"), "GLACIER_TASK": TASK, "GLACIER_FUNCTION": "double-value", **extra,
    }  # fmt: skip


def run_python(code: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], input=stdin, env=env, capture_output=True, text=True, timeout=120, check=False)


def last_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: The Cloud Functions handler, called with the payload on standard input; prints the body,
#: then the caller identity of botocore's chain in that process.
CLOUD_FUNCTION = """
import json, sys
from flask import Request
from werkzeug.test import EnvironBuilder
from glacier_gcp.handler import handler
body, status, _ = handler(Request(EnvironBuilder(method="POST", data=sys.stdin.read(), content_type="application/json").get_environ()))
arn = None
if body.get("ok"):
    import boto3
    arn = boto3.client("sts").get_caller_identity()["Arn"]
print(json.dumps({"body": body, "status": status, "arn": arn}))
"""


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


def admin_client(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="admin", aws_secret_access_key="admin")


def federated_role(moto: MotoServer, name: str) -> str:
    """A role only a Google identity may assume, as glacier-aws's federation generates it; its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "accounts.google.com"}, "Action": "sts:AssumeRoleWithWebIdentity"}]}
    return str(admin_client(moto, "iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def step_payload(source: str, target: str, config: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "protocol": 1, "run_id": "identity", "step": "double_value", "attempt": 1,
        "task": {"module": "glacier.testing.tasks", "qualname": "double_value", "file": None},
        "sources": {"df": {"uri": source, "config": config}}, "target": {"uri": target, "config": config},
    }  # fmt: skip


def test_a_cloud_function_reads_and_writes_s3_as_the_role_its_google_token_assumes(tmp_path: Path, moto: MotoServer) -> None:
    s3 = admin_client(moto, "s3")
    s3.create_bucket(Bucket="gcp-to-s3")
    raw = io.BytesIO()
    pl.DataFrame({"value": [1, 2, 3]}).write_parquet(raw)
    s3.put_object(Bucket="gcp-to-s3", Key="raw.parquet", Body=raw.getvalue())
    role = federated_role(moto, "double-value-gcp")
    config = config_to_dict(AwsConfig(region="us-east-1", endpoint_url=moto.endpoint))
    payload = step_payload("s3://gcp-to-s3/raw.parquet", "s3://gcp-to-s3/out.parquet", config)
    with metadata_server(unique_id="104857600000000000001") as gce:
        env = clean_env(
            tmp_path, **gce.environment, K_SERVICE="double-value", AWS_ROLE_ARN=role, GLACIER_AWS_WEB_IDENTITY_AUDIENCE="sts.amazonaws.com",
            AWS_ENDPOINT_URL_STS=moto.endpoint, AWS_DEFAULT_REGION="us-east-1",
        )  # fmt: skip
        out = last_json(run_python(CLOUD_FUNCTION, env, json.dumps(payload)))
    assert out["body"]["ok"] is True, out["body"]["error"]["message"]
    assert out["body"]["rows"] == 3
    # The session is the role's, assumed with the function's own token, named after the function.
    assert out["arn"] == "arn:aws:sts::123456789012:assumed-role/double-value-gcp/glacier-double-value"
    assert gce.audiences == ["sts.amazonaws.com"], "one ID token, for AWS's audience"
    written = pl.read_parquet(s3.get_object(Bucket="gcp-to-s3", Key="out.parquet")["Body"].read())
    assert written["doubled"].to_list() == [2, 4, 6]
    (token_file,) = (tmp_path / "identity").iterdir()
    assert mode(token_file) == 0o600 and mode(token_file.parent) == 0o700
    claims = jwt_claims(token_file.read_text())
    assert claims["aud"] == "sts.amazonaws.com" and claims["sub"] == "104857600000000000001"
    assert token_file.read_text() not in json.dumps(out)


def test_a_cloud_function_without_its_metadata_server_fails_the_step_naming_the_audience(tmp_path: Path, moto: MotoServer) -> None:
    config = config_to_dict(AwsConfig(region="us-east-1", endpoint_url=moto.endpoint))
    payload = step_payload("s3://gcp-to-s3/raw.parquet", "s3://gcp-to-s3/never.parquet", config)
    env = clean_env(tmp_path, AWS_ROLE_ARN="arn:aws:iam::123456789012:role/r", GLACIER_AWS_WEB_IDENTITY_AUDIENCE="sts.amazonaws.com")  # no K_SERVICE
    out = last_json(run_python(CLOUD_FUNCTION, env, json.dumps(payload)))
    error = out["body"]["error"]
    assert out["body"]["ok"] is False and error["type"] == "StepError" and error["step"] == "double_value"
    assert "arn:aws:iam::123456789012:role/r" in error["what"] and "'sts.amazonaws.com'" in error["what"]
    assert "Cloud Functions" in error["hint"]


def test_an_azure_function_reaches_s3_as_the_role_its_entra_token_assumes(tmp_path: Path, moto: MotoServer) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/sts.windows.net/t/"}, "Action": "sts:AssumeRoleWithWebIdentity"}]}
    role = admin_client(moto, "iam").create_role(RoleName="double-value-azure", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    code = CONFIGURE + """
import boto3
print(json.dumps({"env": seen, "arn": boto3.client("sts").get_caller_identity()["Arn"]}))
"""
    with identity_endpoint(principal_id="oid-of-the-app") as msi:
        env = clean_env(
            tmp_path, **msi.environment, WEBSITE_SITE_NAME="double-value-app", AWS_ROLE_ARN=role, GLACIER_AWS_WEB_IDENTITY_AUDIENCE="api://AzureADTokenExchange",
            AWS_ENDPOINT_URL_STS=moto.endpoint, AWS_DEFAULT_REGION="us-east-1",
        )  # fmt: skip
        del env["GLACIER_FUNCTION"]  # Azure's app settings do not set it; App Service names the app
        out = last_json(run_python(code, env))
    assert out["arn"] == "arn:aws:sts::123456789012:assumed-role/double-value-azure/glacier-double-value-app"
    assert msi.resources == ["api://AzureADTokenExchange"]
    token_file = Path(out["env"]["AWS_WEB_IDENTITY_TOKEN_FILE"])
    assert mode(token_file) == 0o600 and jwt_claims(token_file.read_text())["sub"] == "oid-of-the-app"


@pytest.mark.parametrize(
    ("given", "untouched"),
    [
        ({"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "GLACIER_AWS_WEB_IDENTITY_AUDIENCE": "sts.amazonaws.com", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, "AWS_WEB_IDENTITY_TOKEN_FILE"),
        ({"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "GLACIER_AWS_WEB_IDENTITY_AUDIENCE": "sts.amazonaws.com", "AWS_PROFILE": "mine"}, "AWS_WEB_IDENTITY_TOKEN_FILE"),
        ({"AWS_ROLE_ARN": "arn:aws:iam::1:role/r"}, "AWS_WEB_IDENTITY_TOKEN_FILE"),
        ({"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t", "GLACIER_AZURE_FEDERATED_AUDIENCE": "api://AzureADTokenExchange", "AZURE_CLIENT_SECRET": "s"}, "AZURE_FEDERATED_TOKEN_FILE"),
        ({"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t"}, "AZURE_FEDERATED_TOKEN_FILE"),
        ({"GLACIER_GCP_CREDENTIAL_CONFIG": credential_config("aws", POOL, ACCOUNT), "GOOGLE_APPLICATION_CREDENTIALS": "/given/by/the/operator.json"}, "GOOGLE_APPLICATION_CREDENTIALS"),
    ],
    ids=["aws-keys-given", "aws-profile-given", "aws-no-audience", "azure-secret-given", "azure-home-identity", "gcp-credentials-given"],
)
def test_credentials_the_platform_already_gives_are_left_as_they_are(given: dict[str, str], untouched: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from glacier.plugins.identity import configure_credentials

    monkeypatch.setenv("GLACIER_IDENTITY_DIR", str(tmp_path / "identity"))
    environ = dict(given)
    configure_credentials(environ)  # no token is asked for: no plugin here could give one
    assert environ == given and environ.get(untouched) == given.get(untouched)
    assert not (tmp_path / "identity").exists() or not list((tmp_path / "identity").iterdir())


@pytest.mark.parametrize("text", ["not json", '{"type": "service_account", "private_key": "k"}', "[]"], ids=["not-json", "a-key-file", "a-list"])
def test_a_credential_configuration_that_is_not_external_account_is_refused_without_echoing_it(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from glacier.errors import IdentityError
    from glacier.plugins.identity import configure_credentials

    monkeypatch.setenv("GLACIER_IDENTITY_DIR", str(tmp_path / "identity"))
    with pytest.raises(IdentityError, match="GLACIER_GCP_CREDENTIAL_CONFIG is not an external_account") as caught:
        configure_credentials({"GLACIER_GCP_CREDENTIAL_CONFIG": text})
    assert text not in str(caught.value)
    assert caught.value.hint and "generate" in caught.value.hint


#: The set-up a deployed function does before its first step; prints the variables it set.
CONFIGURE = """
import json, os
from glacier.plugins.identity import configure_credentials
configure_credentials()
seen = {name: os.environ.get(name) for name in ("GOOGLE_APPLICATION_CREDENTIALS", "AZURE_FEDERATED_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE")}
"""

#: After the set-up, what google-auth makes of the Application Default Credentials file, and
#: the subject token it would send to Google's STS (no network: built from the environment or
#: the token file). The class is chosen as google.auth.default() chooses it; default() itself
#: would go on to ask Google's STS and resource manager for the pool's project.
GOOGLE_SUBJECT_TOKEN = CONFIGURE + """
import google.auth.transport.requests
from google.auth import aws, identity_pool
with open(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]) as f:
    info = json.load(f)
assert info["type"] == "external_account"
kind = aws.Credentials if info["credential_source"].get("environment_id", "").startswith("aws") else identity_pool.Credentials
credentials = kind.from_info(info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
subject = credentials.retrieve_subject_token(google.auth.transport.requests.Request())
print(json.dumps({"env": seen, "type": type(credentials).__module__ + "." + type(credentials).__name__, "subject": subject}))
"""


def test_a_lambda_function_reaches_gcs_with_a_private_credential_file_signed_by_its_own_role(tmp_path: Path) -> None:
    lambda_env = {"AWS_ACCESS_KEY_ID": "ASIALAMBDAROLEKEY", "AWS_SECRET_ACCESS_KEY": "lambda-role-secret", "AWS_SESSION_TOKEN": "lambda-session", "AWS_REGION": "eu-west-1"}
    env = clean_env(tmp_path, GLACIER_GCP_CREDENTIAL_CONFIG=credential_config("aws", POOL, ACCOUNT), **lambda_env)
    out = last_json(run_python(GOOGLE_SUBJECT_TOKEN, env))
    path = Path(out["env"]["GOOGLE_APPLICATION_CREDENTIALS"])
    assert path.parent == tmp_path / "identity"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert json.loads(path.read_text()) == json.loads(credential_config("aws", POOL, ACCOUNT)), "the configuration, unchanged: no key added"
    assert out["type"] == "google.auth.aws.Credentials"
    # google-auth signed GetCallerIdentity with the Lambda role's own credentials, for the pool.
    request = json.loads(__import__("urllib.parse").parse.unquote(out["subject"]))
    headers = {h["key"].lower(): h["value"] for h in request["headers"]}
    assert request["url"] == "https://sts.eu-west-1.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
    assert "Credential=ASIALAMBDAROLEKEY/" in headers["authorization"] and headers["x-amz-security-token"] == "lambda-session"
    assert headers["x-goog-cloud-target-resource"] == POOL
    assert "lambda-role-secret" not in path.read_text()


def test_an_azure_function_reaches_gcs_with_its_managed_identity_token_in_a_private_file(tmp_path: Path) -> None:
    with identity_endpoint(principal_id="0b1ec7-1d") as msi:
        env = clean_env(tmp_path, **msi.environment, GLACIER_GCP_CREDENTIAL_CONFIG=credential_config("azure", POOL, ACCOUNT))
        out = last_json(run_python(GOOGLE_SUBJECT_TOKEN, env))
    config = json.loads(Path(out["env"]["GOOGLE_APPLICATION_CREDENTIALS"]).read_text())
    token_file = Path(config["credential_source"]["file"])
    assert token_file.parent == tmp_path / "identity" and mode(token_file) == 0o600
    assert msi.resources == ["api://AzureADTokenExchange"]
    assert out["type"] == "google.auth.identity_pool.Credentials"
    assert out["subject"] == token_file.read_text(), "google-auth presents the file's token"
    claims = jwt_claims(out["subject"])
    assert claims["sub"] == "0b1ec7-1d" and claims["aud"] == "api://AzureADTokenExchange"


def test_a_cloud_function_reaches_azure_with_its_google_token_as_the_federated_assertion(tmp_path: Path) -> None:
    azure = {"AZURE_CLIENT_ID": "c1", "AZURE_TENANT_ID": "t1", "GLACIER_AZURE_FEDERATED_AUDIENCE": "api://AzureADTokenExchange"}
    code = CONFIGURE + """
from azure.identity import DefaultAzureCredential, WorkloadIdentityCredential
WorkloadIdentityCredential()  # reads AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, refuses if one is missing
# What adlfs and polars' Azure credential provider build: the workload identity is in their chain.
seen["chain"] = [type(c).__name__ for c in DefaultAzureCredential().credentials]
print(json.dumps(seen))
"""
    with metadata_server(unique_id="104857600000000000002") as gce:
        out = last_json(run_python(code, clean_env(tmp_path, **gce.environment, K_SERVICE="double-value", **azure)))
    token_file = Path(out["AZURE_FEDERATED_TOKEN_FILE"])
    assert mode(token_file) == 0o600 and token_file.parent == tmp_path / "identity"
    claims = jwt_claims(token_file.read_text())
    assert claims["aud"] == "api://AzureADTokenExchange" and claims["sub"] == "104857600000000000002"
    assert claims["iss"] == "https://accounts.google.com"
    assert "WorkloadIdentityCredential" in out["chain"]


def test_an_azure_function_token_comes_from_its_user_assigned_identity() -> None:
    code = "import json; from glacier.plugins.identity import identity_token, jwt_claims; print(json.dumps(jwt_claims(identity_token('api://AzureADTokenExchange'))))"
    with identity_endpoint(client_id="a5a5a5a5-0000-0000-0000-000000000001", principal_id="oid-1", tenant_id="tenant-1") as msi:
        env = {"PATH": os.environ["PATH"], **OFFLINE, **msi.environment}
        claims = last_json(run_python(code, env))
        wrong = run_python(code, {**env, "IDENTITY_HEADER": "not-the-platform's"})
    assert claims["sub"] == "oid-1" and claims["appid"] == "a5a5a5a5-0000-0000-0000-000000000001"
    assert claims["iss"] == "https://sts.windows.net/tenant-1/"
    assert wrong.returncode != 0 and "IdentityError" in wrong.stderr and "'api://AzureADTokenExchange'" in wrong.stderr


#: The Lambda handler, called with the payload on standard input; prints the result, then
#: whether AZURE_CLIENT_SECRET holds the secret (by its hash: the value itself is never printed).
LAMBDA = """
import hashlib, json, os, sys
from glacier_aws.handler import handler
result = handler(json.loads(sys.stdin.read()), None)
held = hashlib.sha256(os.environ.get("AZURE_CLIENT_SECRET", "").encode()).hexdigest()
print(json.dumps({"result": result, "secret_sha256": held}))
"""


def test_a_lambda_function_reads_its_azure_client_secret_into_its_environment_only(tmp_path: Path, moto: MotoServer) -> None:
    secret = "entra-client-secret-" + os.urandom(8).hex()
    arn = admin_client(moto, "secretsmanager").create_secret(Name="glacier/double-value/azure-client-secret", SecretString=secret)["ARN"]
    data = tmp_path / "data"
    data.mkdir()
    pl.DataFrame({"value": [1, 2]}).write_parquet(data / "raw.parquet")
    payload = step_payload(f"file://{data}/raw.parquet", f"file://{data}/out.parquet", None)
    lambda_env = {"AWS_ACCESS_KEY_ID": "lambda", "AWS_SECRET_ACCESS_KEY": "lambda", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto.endpoint}
    env = clean_env(tmp_path, AZURE_CLIENT_ID="c1", AZURE_TENANT_ID="t1", GLACIER_AZURE_CLIENT_SECRET_ARN=arn, **lambda_env)
    proc = run_python(LAMBDA, env, json.dumps(payload))
    out = last_json(proc)
    assert out["result"]["ok"] is True, out["result"]
    assert out["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in proc.stdout + proc.stderr, "never logged, never in the result"
    for path in tmp_path.rglob("*"):  # the step's target, the identity folder, anything else written
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_lambda_function_whose_secret_has_no_value_yet_fails_the_step_with_the_command_that_fixes_it(tmp_path: Path, moto: MotoServer) -> None:
    arn = admin_client(moto, "secretsmanager").create_secret(Name="glacier/empty/azure-client-secret")["ARN"]  # declared, no value: as after apply
    payload = step_payload(f"file://{tmp_path}/raw.parquet", f"file://{tmp_path}/never.parquet", None)
    lambda_env = {"AWS_ACCESS_KEY_ID": "lambda", "AWS_SECRET_ACCESS_KEY": "lambda", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto.endpoint}
    env = clean_env(tmp_path, AZURE_CLIENT_ID="c1", AZURE_TENANT_ID="t1", GLACIER_AZURE_CLIENT_SECRET_ARN=arn, **lambda_env)
    error = last_json(run_python(LAMBDA, env, json.dumps(payload)))["result"]["error"]
    assert error["type"] == "StepError" and error["step"] == "double_value" and arn in error["what"]
    assert f"put-secret-value --secret-id {arn}" in error["hint"]
    assert not (tmp_path / "never.parquet").exists()
