"""The generated Terraform for Google Cloud, read back as data (the contract suite loads it and runs checkov)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from glacier.cli import load_pipeline
from glacier.testing.terraform import blocks, unquote
from glacier_gcp.testing.bindings import binding_problems

from .fixtures import GENERATED_PIPELINE


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, Any]]:
    import hcl2

    folder = tmp_path_factory.mktemp("generate")
    file = folder / "contract_pipeline.py"
    file.write_text(textwrap.dedent(GENERATED_PIPELINE))
    pipeline = load_pipeline(f"{file}:pipeline")
    result = pipeline.run(mode="generate", out=folder / "infra")
    with open(folder / "infra" / "main.tf") as f:
        doc = hcl2.load(f)
    return folder / "infra", result, doc


def test_every_function_gets_its_size_runtime_and_pinned_task(generated: Any) -> None:
    _, _, doc = generated
    functions = {unquote(b["name"]): unquote(b) for b in blocks(doc, "resource", "google_cloudfunctions2_function").values()}
    assert set(functions) == {"contract-double-value", "contract-join-by-id"}
    service = functions["contract-double-value"]["service_config"][0]
    assert (service["available_memory"], service["available_cpu"], service["timeout_seconds"]) == ("2048Mi", "1", 600)
    assert (service["max_instance_count"], service["min_instance_count"]) == (100, 0)
    assert service["environment_variables"]["GLACIER_TASK"] == "glacier.testing.tasks:double_value"
    build = functions["contract-double-value"]["build_config"][0]
    assert (build["runtime"], build["entry_point"]) == ("python312", "handler")


def test_each_function_runs_as_a_service_account_of_its_own(generated: Any) -> None:
    _, _, doc = generated
    accounts = {unquote(b["account_id"]) for b in blocks(doc, "resource", "google_service_account").values()}
    assert accounts == {"glc-contract-double-value", "glc-contract-join-by-id"}
    emails = [unquote(b)["service_config"][0]["service_account_email"] for b in blocks(doc, "resource", "google_cloudfunctions2_function").values()]
    assert len(set(emails)) == 2


def test_buckets_are_hardened(generated: Any) -> None:
    _, _, doc = generated
    buckets = {ident: unquote(b) for ident, b in blocks(doc, "resource", "google_storage_bucket").items()}
    assert set(buckets) == {"glacier_contract_lake", "glacier_contract_reports", "glacier_source"}
    for body in buckets.values():
        assert body["uniform_bucket_level_access"] is True and body["public_access_prevention"] == "enforced"
        assert body["versioning"][0]["enabled"] is True and body["force_destroy"] is False
    assert buckets["glacier_source"]["name"] == "${var.gcp_project}-glacier-contract-source"


def test_variables_are_prefixed_and_the_invoker_is_asked_for(generated: Any) -> None:
    _, _, doc = generated
    variables = {unquote(name) for entry in doc["variable"] for name in entry}
    assert variables == {"gcp_project", "gcp_region", "gcp_invoker"}
    outputs = {unquote(name) for entry in doc["output"] for name in entry}
    assert {"contract_double_value_url", "contract_join_by_id_url", "gcp_source_bucket"} <= outputs


def test_the_manifest_records_each_functions_url_and_source_size(generated: Any) -> None:
    out, result, _ = generated
    for entry in result.manifest["functions"].values():
        zip_path = out / "artifacts" / entry["extras"]["source"]
        assert int(entry["extras"]["source_bytes"]) == zip_path.stat().st_size
    urls = {entry["function_name"]: entry["extras"]["url"] for entry in result.manifest["functions"].values()}
    assert urls == {
        "contract-double-value": "https://europe-west1-glacier-contract.cloudfunctions.net/contract-double-value",
        "contract-join-by-id": "https://europe-west1-glacier-contract.cloudfunctions.net/contract-join-by-id",
    }


def test_what_gcs_cannot_scope_is_said_beside_the_binding(generated: Any) -> None:
    out, _, _ = generated
    text = (out / "main.tf").read_text()
    assert "# GCS cannot narrow listing to a prefix" in text
    assert "# IAM conditions have no glob: the source raw/*.parquet is granted as every object whose name starts with 'raw/'" in text


def test_the_access_model_check_finds_a_wider_grant(generated: Any, tmp_path: Path) -> None:
    """The check can fail: a writer binding widened to a prefix is reported."""
    import shutil

    out, _, _ = generated
    copy = tmp_path / "infra"
    shutil.copytree(out, copy)
    main = copy / "main.tf"
    text = main.read_text()
    narrow = 'expression  = "resource.name == \\"projects/_/buckets/glacier-contract-reports/objects/joined.parquet\\""'
    assert narrow in text
    main.write_text(text.replace(narrow, 'expression  = "resource.name.startsWith(\\"projects/_/buckets/glacier-contract-reports/objects/\\")"'))
    pipeline = load_pipeline(f"{out.parent / 'contract_pipeline.py'}:pipeline")
    problems = binding_problems(copy, pipeline)
    assert "contract-join-by-id: writer on glacier-contract-reports/* is granted but no step needs it" in problems
    assert "contract-join-by-id: writer on glacier-contract-reports/joined.parquet is needed but not granted" in problems


def test_generating_without_a_project_says_which_field(tmp_path: Path) -> None:
    file = tmp_path / "no_project.py"
    file.write_text(textwrap.dedent(GENERATED_PIPELINE).replace('project="glacier-contract"', 'project=""'))
    with pytest.raises(ValueError, match=r"(?s)needs a project.*GcpConfig\(project="):
        load_pipeline(f"{file}:pipeline").run(mode="generate", out=tmp_path / "infra")


def test_aws_and_gcp_share_one_root_module(tmp_path: Path) -> None:
    """A pipeline reading s3:// and writing gs:// generates one root with both providers' blocks."""
    import hcl2

    file = tmp_path / "two_clouds.py"
    file.write_text(textwrap.dedent('''
        from glacier import Pipeline, Provider
        from glacier.config import AwsConfig, CloudFunctionConfig, GcpConfig
        from glacier.testing import tasks

        aws = Provider(config=AwsConfig(region="us-east-1"))
        gcp = Provider(config=GcpConfig(project="glacier-multi", region="us-central1"))
        double_value = gcp.serverless(config=CloudFunctionConfig()).task()(tasks.double_value)
        pipeline = Pipeline(name="multi").source(aws.bucket(bucket="aws-lake", path="raw.parquet")).transform(double_value).to(gcp.bucket(bucket="gcp-lake", path="out.parquet"))
    '''))
    result = load_pipeline(f"{file}:pipeline").run(mode="generate", out=tmp_path / "infra")
    assert sorted(result.providers) == ["aws", "gcp"]
    with open(tmp_path / "infra" / "main.tf") as f:
        doc = hcl2.load(f)
    assert set(blocks(doc, "resource", "aws_s3_bucket")) == {"aws_lake"}
    assert set(blocks(doc, "resource", "google_storage_bucket")) == {"gcp_lake", "glacier_source"}
    from glacier.testing.terraform import assert_terraform_loads

    assert_terraform_loads(tmp_path / "infra")
