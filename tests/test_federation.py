"""One root module for a pipeline on AWS, Google Cloud and Azure, with keyless access across them.

The pipeline: S3 -> a Lambda step -> GCS -> a Cloud Functions step joining reference data
from S3 -> Azure Blob -> an Azure Functions step joining reference data from GCS -> S3 ->
a step on this machine -> a local file, and a Lambda step archiving the Azure blob to S3:
its functions reach every other cloud. Five pairs are federated; Lambda -> Azure, which no
federation covers, gets an Entra application whose client secret lives in Secrets Manager,
its value outside Terraform. Generation builds the real artifacts (from Glacier's cache)
and needs no emulator.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from leaks import files_written, leaks

from glacier.cli import load_pipeline
from glacier.infra.access import foreign_access
from glacier.testing.terraform import assert_checkov_passes, assert_terraform_loads, blocks, unquote

THREE_CLOUDS = '''
import polars as pl

from glacier import Pipeline, Provider
from glacier.config import AwsConfig, AzureConfig, AzureFunctionConfig, CloudFunctionConfig, GcpConfig, LambdaConfig, LocalConfig

aws = Provider(config=AwsConfig(region="us-east-1"))
gcp = Provider(config=GcpConfig(project="glacier-multi", region="us-central1"))
azure = Provider(config=AzureConfig(storage_account="glaciermulti", resource_group="multi", location="westeurope"))
here = Provider(config=LocalConfig(root={root!r}))


@aws.serverless(config=LambdaConfig(memory=1024)).task()
def clean(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.drop_nulls()


@gcp.serverless(config=CloudFunctionConfig(memory=2048)).task(cache=True)
def enrich(left: pl.LazyFrame, right: pl.LazyFrame) -> pl.LazyFrame:
    return left.join(right, on="id")


@azure.serverless(config=AzureFunctionConfig(memory=2048, runtime={runtime!r})).task()
def aggregate(left: pl.LazyFrame, right: pl.LazyFrame) -> pl.LazyFrame:
    return left.join(right, on="id").group_by("id").agg(pl.len())


@aws.serverless(config=LambdaConfig(memory=1024)).task()
def archive(df: pl.LazyFrame) -> pl.LazyFrame:
    return df


@here.local().task
def report(df: pl.LazyFrame) -> pl.LazyFrame:
    return df


raw = aws.bucket(bucket="multi-raw", path="events/*.parquet")
customers = aws.bucket(bucket="multi-raw", path="ref/customers.parquet")
cleaned = gcp.bucket(bucket="multi-stage", path="clean/events.parquet")
regions = gcp.bucket(bucket="multi-stage", path="ref/regions.parquet")
enriched = azure.bucket(bucket="stage", path="enriched.parquet")
totals = aws.bucket(bucket="multi-out", path="totals.parquet")
daily = here.bucket(bucket="reports", path="daily.parquet")
archived = aws.bucket(bucket="multi-out", path="archive/enriched.parquet")

first = Pipeline(name="first").source(raw).transform(clean).to(cleaned)
second = Pipeline(name="second").sources({{"left": cleaned, "right": customers}}).transform(enrich).to(enriched)
third = Pipeline(name="third").sources({{"left": enriched, "right": regions}}).transform(aggregate).to(totals)
fourth = Pipeline(name="fourth").source(totals).transform(report).to(daily)
fifth = Pipeline(name="fifth").source(enriched).transform(archive).to(archived)
pipeline = Pipeline.compose(first, second, third, fourth, fifth, name="multi")
'''

#: Recognisable credentials planted in the environment while Glacier generates and runs.
PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAPLANTEDKEY7QX3ZV",
    "AWS_SECRET_ACCESS_KEY": "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",
    "AWS_SESSION_TOKEN": "planted-session-token-51c0e2b4",
    "AZURE_STORAGE_KEY": "cGxhbnRlZC1henVyZS1zdG9yYWdlLWtleS03YjQx",
    "AZURE_CLIENT_SECRET": "planted-azure-client-secret-3e9d",
}
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\\nMIIplantedGooglePrivateKey4d7c\\n-----END PRIVATE KEY-----\\n"


def _plant(mp: pytest.MonkeyPatch, folder: Path) -> list[str]:
    """Set the planted credentials (a fake service-account key file too); return the strings to look for."""
    key_file = folder / "planted-service-account.json"
    key_file.write_text(json.dumps({"type": "service_account", "project_id": "glacier-multi", "private_key_id": "plantedkeyid0c6a",
                                    "private_key": PRIVATE_KEY.replace("\\n", "\n"), "client_email": "planted@glacier-multi.iam.gserviceaccount.com"}))  # fmt: skip
    for name, value in PLANTED.items():
        mp.setenv(name, value)
    mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    return [*PLANTED.values(), "MIIplantedGooglePrivateKey4d7c", "plantedkeyid0c6a"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, list[str], Path]:
    """The three-cloud pipeline generated with planted credentials in the environment."""
    folder = tmp_path_factory.mktemp("three-clouds")
    file = folder / "three_clouds.py"
    file.write_text(textwrap.dedent(THREE_CLOUDS.format(root=str(folder / "reports"), runtime=f"3.{sys.version_info.minor}")))
    secrets_dir = tmp_path_factory.mktemp("planted")
    with pytest.MonkeyPatch.context() as mp:
        planted = _plant(mp, secrets_dir)
        mp.setenv("GLACIER_STATE_DIR", str(folder / "state"))
        pipeline = load_pipeline(f"{file}:pipeline")
        pipeline.run(mode="generate", out=folder / "infra")
    return folder / "infra", pipeline, planted, folder


def _doc(infra: Path) -> dict[str, Any]:
    import hcl2

    with (infra / "main.tf").open() as fh:
        return hcl2.load(fh)


def test_every_function_reaches_every_other_cloud_it_touches(generated: tuple[Path, Any, list[str], Path]) -> None:
    pipeline = generated[1]
    pairs = {(p.home, p.cloud, p.spec.task.name) for p in foreign_access(pipeline, pipeline.build())}
    assert pairs == {("aws", "gcp", "clean"), ("aws", "azure", "archive"), ("gcp", "aws", "enrich"), ("gcp", "azure", "enrich"), ("azure", "aws", "aggregate"), ("azure", "gcp", "aggregate")}


def test_the_root_has_every_clouds_providers_and_prefixed_variables(generated: tuple[Path, Any, list[str], Path]) -> None:
    doc = _doc(generated[0])
    providers = {name.strip('"') for entry in doc["terraform"][0]["required_providers"] for name in entry if not name.startswith("__")}
    # azuread: the Entra application of the one pair no federation covers (Lambda -> Azure).
    assert providers == {"aws", "google", "azurerm", "azuread"}
    variables = {name.strip('"') for entry in doc["variable"] for name in entry if not name.startswith("__")}
    assert {"aws_region", "gcp_project", "gcp_region", "azure_location", "azure_resource_group"} <= variables
    assert all(name.startswith(("aws_", "gcp_", "azure_")) for name in variables), variables


def test_the_root_loads_and_passes_checkov_with_every_skip_justified(generated: tuple[Path, Any, list[str], Path]) -> None:
    assert_terraform_loads(generated[0])
    report = assert_checkov_passes(generated[0])
    assert report.skipped, "the generated code skips checks it documents"
    assert all(len(skip.reason) > 40 for skip in report.skipped), [s for s in report.skipped if len(s.reason) <= 40]


def test_every_identity_in_every_cloud_matches_the_access_model(generated: tuple[Path, Any, list[str], Path]) -> None:
    from glacier_aws.testing.roles import role_problems as aws_problems
    from glacier_azure.testing.roles import role_problems as azure_problems
    from glacier_gcp.testing.bindings import binding_problems

    infra, pipeline = generated[0], generated[1]
    assert aws_problems(infra, pipeline) == []
    assert binding_problems(infra, pipeline) == []
    assert azure_problems(infra, pipeline) == []


def test_each_foreign_identity_trusts_only_its_own_function(generated: tuple[Path, Any, list[str], Path]) -> None:
    doc = _doc(generated[0])
    trust = unquote(blocks(doc, "data", "aws_iam_policy_document")["multi_enrich_federated_assume_role"])["statement"][0]
    assert trust["principals"][0] == {"type": "Federated", "identifiers": ["accounts.google.com"]}
    assert {(c["variable"], tuple(c["values"])) for c in trust["condition"]} == {
        ("accounts.google.com:sub", ("local.glacier_multi_enrich_identity.unique_id",)),
        ("accounts.google.com:oaud", ("sts.amazonaws.com",)),
    }
    pool = unquote(blocks(doc, "resource", "google_iam_workload_identity_pool_provider")["glacier_aws"])
    assert pool["attribute_condition"] == "attribute.aws_role in ['${local.glacier_multi_clean_identity.role_name}']"
    assert pool["aws"][0]["account_id"] == "local.glacier_multi_clean_identity.account_id"
    entra = unquote(blocks(doc, "resource", "google_iam_workload_identity_pool_provider")["glacier_azure"])
    assert entra["oidc"][0]["issuer_uri"] == "https://sts.windows.net/${local.glacier_multi_aggregate_identity.tenant_id}/"
    credential = unquote(blocks(doc, "resource", "azurerm_federated_identity_credential")["multi_enrich_federated"])
    assert (credential["issuer"], credential["subject"]) == ("https://accounts.google.com", "local.glacier_multi_enrich_identity.unique_id")


def test_functions_get_a_credential_configuration_not_a_key(generated: tuple[Path, Any, list[str], Path]) -> None:
    doc = _doc(generated[0])
    config = json.loads(unquote(doc["locals"][0]["glacier_multi_clean_on_gcp"])["credential_config"].replace('\\"', '"'))
    assert config["type"] == "external_account" and config["credential_source"]["environment_id"] == "aws1"
    assert "private_key" not in json.dumps(config)
    lambda_env = unquote(blocks(doc, "resource", "aws_lambda_function")["multi_clean"])["environment"][0]["variables"]
    assert lambda_env["GLACIER_GCP_CREDENTIAL_CONFIG"] == "local.glacier_multi_clean_on_gcp.credential_config"
    function = unquote(blocks(doc, "resource", "google_cloudfunctions2_function")["multi_enrich"])
    env = function["service_config"][0]["environment_variables"]
    assert env["AWS_ROLE_ARN"] == "local.glacier_multi_enrich_on_aws.role_arn"
    assert env["AZURE_CLIENT_ID"] == "local.glacier_multi_enrich_on_azure.client_id"


@pytest.mark.parametrize(
    ("check", "old", "new"),
    [
        pytest.param("aws", "local.glacier_multi_enrich_identity.unique_id", '"1234567890"', id="aws-trusts-another-subject"),
        pytest.param("gcp", "attribute.aws_role/${local.glacier_multi_clean_identity.role_name}", "attribute.aws_role/*", id="gcp-trusts-any-role"),
        pytest.param("aws", "      aws_secretsmanager_secret.multi_archive_azure.arn,", '      "*",', id="aws-reads-every-secret"),
        pytest.param("azure", 'subject             = local.glacier_multi_enrich_identity.unique_id', 'subject = "1234567890"', id="azure-trusts-another-subject"),
    ],
)
def test_the_checks_find_a_wider_trust(generated: tuple[Path, Any, list[str], Path], tmp_path: Path, check: str, old: str, new: str) -> None:
    from glacier_aws.testing.roles import role_problems as aws_problems
    from glacier_azure.testing.roles import role_problems as azure_problems
    from glacier_gcp.testing.bindings import binding_problems

    infra = tmp_path / "infra"
    shutil.copytree(generated[0], infra, ignore=shutil.ignore_patterns("artifacts"))
    text = (infra / "main.tf").read_text()
    assert old in text
    (infra / "main.tf").write_text(text.replace(old, new, 1))
    problems = {"aws": aws_problems, "gcp": binding_problems, "azure": azure_problems}[check](infra, generated[1])
    assert problems, f"widening {old!r} went unnoticed"


def test_a_wider_foreign_grant_is_found(generated: tuple[Path, Any, list[str], Path], tmp_path: Path) -> None:
    from glacier_aws.testing.roles import role_problems

    infra = tmp_path / "infra"
    shutil.copytree(generated[0], infra, ignore=shutil.ignore_patterns("artifacts"))
    text = (infra / "main.tf").read_text()
    start = text.index('data "aws_iam_policy_document" "multi_enrich_federated" {')
    old = '"${aws_s3_bucket.multi_raw.arn}/ref/customers.parquet"'
    at = text.index(old, start)
    (infra / "main.tf").write_text(text[:at] + '"${aws_s3_bucket.multi_raw.arn}/*"' + text[at + len(old):])
    assert any("multi-enrich" in p and "/*" in p for p in role_problems(infra, generated[1]))


def test_no_planted_credential_is_in_anything_glacier_wrote(generated: tuple[Path, Any, list[str], Path], tmp_path: Path) -> None:
    """The root module, the artifacts, the manifests, and a run's records hold none of the environment's secrets."""
    infra, _, planted, folder = generated
    # A run on this machine writes run records; it runs with the same planted environment.
    run_file = tmp_path / "here.py"
    run_file.write_text(textwrap.dedent(f'''
        from glacier import Pipeline, Provider
        from glacier.config import LocalConfig
        from glacier.testing import tasks

        here = Provider(config=LocalConfig(root={str(tmp_path / "data")!r}))
        double_value = here.local().task(cache=True)(tasks.double_value)
        pipeline = Pipeline(name="here").source(here.bucket(bucket="lake", path="in.parquet")).transform(double_value).to(here.bucket(bucket="lake", path="out.parquet"))
    '''))
    import polars as pl

    (tmp_path / "data" / "lake").mkdir(parents=True)
    pl.DataFrame({"id": [1, 2], "value": [1.0, 2.0]}).write_parquet(tmp_path / "data" / "lake" / "in.parquet")
    with pytest.MonkeyPatch.context() as mp:
        _plant(mp, tmp_path)
        mp.setenv("GLACIER_STATE_DIR", str(folder / "state"))
        load_pipeline(f"{run_file}:pipeline").run(mode="local")
    written = files_written(infra, folder / "state", tmp_path / "data", open_zips=True)
    assert any(name.endswith("main.tf") for name in written) and any(".zip!" in name for name in written)
    assert len([name for name in written if name.startswith(str(folder / "state"))]) >= 2, "the manifest copy and the run's records"
    found = leaks(planted, written)
    assert found == []


def test_a_lambda_step_reads_azure_with_a_secret_whose_value_is_not_in_terraform(generated: tuple[Path, Any, list[str], Path]) -> None:
    doc = _doc(generated[0])
    secret = unquote(blocks(doc, "resource", "aws_secretsmanager_secret")["multi_archive_azure"])
    assert secret["name"] == "glacier/multi-archive/azure-client-secret"
    types = {t for entry in doc["resource"] for t in entry}
    assert "aws_secretsmanager_secret_version" not in types and not any(t.startswith("azuread_application_password") for t in types)
    env = unquote(blocks(doc, "resource", "aws_lambda_function")["multi_archive"])["environment"][0]["variables"]
    assert env["GLACIER_AZURE_CLIENT_SECRET_ARN"] == "aws_secretsmanager_secret.multi_archive_azure.arn"
    assert env["AZURE_CLIENT_ID"] == "local.glacier_multi_archive_on_azure.client_id"
    clean = unquote(blocks(doc, "data", "aws_iam_policy_document")["multi_clean"])["statement"]
    assert not any("secretsmanager:GetSecretValue" in st["actions"] for st in clean), "only the function that needs it reads a secret"


def test_a_cloud_nobody_federates_with_gets_nothing_and_a_warning(tmp_path: Path) -> None:
    """A third-party cloud's function on S3: AWS's side warns and declares no role for it."""
    import fake_cloud
    from glacier.infra.access import UnfederatedAccessWarning
    from glacier.infra.generate import GenerationPlan
    from glacier.infra.terraform import TerraformModule
    from glacier_aws.infra.terraform import add_resources

    file = tmp_path / "third_party.py"
    file.write_text(textwrap.dedent('''
        from glacier import Pipeline, Provider
        from glacier.config import AwsConfig
        import fake_cloud

        aws = Provider(config=AwsConfig(region="us-east-1"))
        other = Provider(config=fake_cloud.FakeCloudConfig(project="p1"))

        @other.serverless().task
        def enrich(df):
            return df

        pipeline = Pipeline("tp").source(aws.bucket(bucket="tp-lake", path="a.parquet")).transform(enrich).to(other.bucket(bucket="stage", path="b.parquet"))
    '''))
    with fake_cloud.registered():
        pipeline = load_pipeline(f"{file}:pipeline")
        dag = pipeline.build()
        module = TerraformModule(required_version=">= 1.5")
        buckets = [b for step in dag.topological_sort() for b in (*step.sources.values(), step.target) if b.cloud == "aws"]
        plan = GenerationPlan(pipeline=pipeline, dag=dag, provider="aws", module=module, out=tmp_path, buckets=buckets, functions=[], manifest={})
        with pytest.warns(UnfederatedAccessWarning, match=r"'tp-enrich' on 'fakecloud' reads or writes S3.*refused at run time"):
            add_resources(plan, {})
    resources = module.to_dict()["resource"]
    assert set(resources) == {t for t in resources if t.startswith("aws_s3_bucket")}, "buckets only: no role for the foreign function"


def test_each_artifact_carries_the_storage_of_every_scheme_its_functions_touch(generated: tuple[Path, Any, list[str], Path]) -> None:
    """generate hands the functions to each builder: a Lambda step writing gs:// carries the
    light GCS client (no gcsfs, no gRPC), the Cloud Function writing az:// pins adlfs, the
    Azure Function writing s3:// carries s3fs."""
    import zipfile

    infra = generated[0]
    zips = {path.name: zipfile.ZipFile(path) for path in (infra / "artifacts").glob("*.zip")}
    lambda_zip = next(z for name, z in zips.items() if name.startswith("glacier-lambda"))
    tops = {name.split("/")[0] for name in lambda_zip.namelist()}
    assert {"glacier_gcp", "glacier_azure", "adlfs"} <= tops, sorted(tops)
    assert "gcsfs" not in tops and "grpc" not in tops
    assert "glacier_gcp/light.py" in lambda_zip.namelist()

    function_zip = next(z for name, z in zips.items() if name.startswith("glacier-function"))
    requirements = function_zip.read("requirements.txt").decode()
    assert "adlfs==" in requirements and "s3fs==" in requirements, requirements

    azure_zip = next(z for name, z in zips.items() if name.startswith("glacier-azure"))
    site = {name.split("/")[3] for name in azure_zip.namelist() if name.startswith(".python_packages/lib/site-packages/") and name.count("/") > 3}
    assert {"s3fs", "glacier_gcp"} <= site, sorted(site)
