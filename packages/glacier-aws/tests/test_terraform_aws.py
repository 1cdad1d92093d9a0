"""What glacier-aws generates for a pipeline: hardened S3, least-privilege Lambda functions.

The pipeline below is real (a local task and two Lambda tasks over two S3 buckets,
one source a glob); the plan is built as ``glacier.infra.generate`` builds it, and the
artifact is a small real zip. Building the real Lambda artifact is slow and tested
with ``glacier_aws.infra.artifact``; here only what Terraform sees of it matters.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import types
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import hcl2
import polars as pl
import pytest

from glacier import Pipeline, Provider
from glacier.bucket import Bucket
from glacier.infra.access import function_access
from glacier.testing.terraform import blocks
from glacier.testing.terraform import unquote as text
from glacier.infra.generate import FunctionSpec, GenerationPlan
from glacier.infra.naming import function_name
from glacier.infra.terraform import TerraformModule
from glacier.plugins.deployment import DeploymentEntry
from glacier.testing.terraform import (
    CheckovReport,
    assert_checkov_passes,
    assert_terraform_loads,
)
from glacier_aws.infra.artifact import Artifact
from glacier_aws.config import AwsConfig, LambdaConfig
from glacier_aws.infra.terraform import HANDLER, add_resources, generate

aws = Provider(config=AwsConfig(region="us-east-1"))
here = aws.local()
on_lambda = aws.serverless(config=LambdaConfig(memory=1024, timeout=300))
on_arm = aws.serverless(
    config=LambdaConfig(
        memory=2048,
        timeout=900,
        architecture="arm64",
        ephemeral_storage=4096,
        environment={"POLARS_MAX_THREADS": "2", "GREETING": "costs ${5}"},
        log_retention_days=365,
        reserved_concurrency=4,
    )
)
on_short_logs = aws.serverless(config=LambdaConfig(log_retention_days=14))

raw = aws.bucket(bucket="glacier-test-lake", path="raw/*.parquet")
customers = aws.bucket(bucket="glacier-test-lake", path="ref/customers.parquet")
clean_sales = aws.bucket(bucket="glacier-test-lake", path="stage/sales.parquet")
clean_customers = aws.bucket(bucket="glacier-test-lake", path="stage/customers.parquet")
summary = aws.bucket(bucket="glacier-test-reports", path="daily/summary.parquet")
published = aws.bucket(bucket="glacier-test-reports", path="published/summary.parquet")


@on_lambda.task()
def clean(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.drop_nulls()


@on_lambda.task(cache=True)
def summarize(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.group_by("day").agg(pl.len())


@here.task()
def publish(df: pl.LazyFrame) -> pl.LazyFrame:
    return df


@on_arm.task()
def heavy(df: pl.LazyFrame) -> pl.LazyFrame:
    return df


@on_short_logs.task()
def glance(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.head(10)


def etl() -> Pipeline:
    """``clean`` runs in two steps; ``publish`` runs here."""
    sales = Pipeline(name="sales").source(raw).transform(clean).to(clean_sales)
    sales = sales.transform(summarize).to(summary).transform(publish).to(published)
    people = Pipeline(name="people").source(customers).transform(clean).to(clean_customers)
    return Pipeline.compose(sales, people, name="etl")


def small_artifact(out: Path, runtime: str, architecture: str) -> Artifact:
    path = out / "artifacts" / f"glacier-lambda-{runtime}-{architecture}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        # A fixed timestamp: the same zip bytes on every call, as the real builder makes.
        entry = zipfile.ZipInfo("glacier_aws/handler.py", date_time=(1980, 1, 1, 0, 0, 0))
        archive.writestr(entry, "def handler(event, context):\n    return {}\n")
    digest = base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
    return Artifact(
        path, digest, path.stat().st_size, 60, {"glacier-aws": 60}, runtime, architecture
    )


def make_plan(pipeline: Pipeline, out: Path, **options: Any) -> GenerationPlan:
    """The AWS plan, grouped the way ``glacier.infra.generate.generate`` groups it."""
    dag = pipeline.build()
    buckets: list[Any] = []
    functions: dict[str, FunctionSpec] = {}
    for inst in dag.topological_sort():
        for bucket in (*inst.sources.values(), inst.target):
            if bucket.provider_name == "aws" and bucket not in buckets:
                buckets.append(bucket)
        if inst.task.executor.runs_here:
            continue
        ref = inst.task.reference()
        assert ref.file is not None
        spec = functions.setdefault(
            inst.task.name,
            FunctionSpec(
                task=inst.task,
                executor=inst.task.executor,
                name=function_name(pipeline.name, inst.task.name),
                module=ref.module,
                qualname=ref.qualname,
                source_file=Path(ref.file),
            ),
        )
        spec.steps.append(inst)
    return GenerationPlan(
        pipeline=pipeline,
        dag=dag,
        provider="aws",
        module=TerraformModule(required_version=">= 1.5"),
        out=out,
        buckets=buckets,
        functions=list(functions.values()),
        manifest={},
        options=options,
    )


def write(pipeline: Pipeline, out: Path, **options: Any) -> GenerationPlan:
    """Generate ``pipeline``'s AWS resources into ``out`` with small artifacts."""
    plan = make_plan(pipeline, out, **options)
    keys = {(s.executor.config.runtime, s.executor.config.architecture) for s in plan.functions}
    add_resources(plan, {key: small_artifact(out, *key) for key in keys})
    plan.module.write(out)
    return plan


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The etl pipeline's module directory, and its main.tf parsed back by python-hcl2."""
    out = tmp_path_factory.mktemp("etl")
    write(etl(), out)
    with open(out / "main.tf") as f:
        return out, hcl2.load(f)


@pytest.fixture(scope="module")
def checkov(generated: tuple[Path, dict[str, Any]]) -> CheckovReport:
    return assert_checkov_passes(generated[0])


# -- reading main.tf back ---------------------------------------------------------------


def resources(doc: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return blocks(doc, "resource", type_)


def functions_by_name(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Lambda functions by function_name: (Terraform name, body)."""
    return {
        text(body["function_name"]): (ident, body)
        for ident, body in resources(doc, "aws_lambda_function").items()
    }


def statements(doc: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The statements of the role policy of one function (by function_name)."""
    ident, _ = functions_by_name(doc)[function]
    policy = resources(doc, "aws_iam_role_policy")[ident]
    source = text(policy["policy"])
    assert source == f"data.aws_iam_policy_document.{ident}.json"
    document = blocks(doc, "data", "aws_iam_policy_document")[ident]
    return [text(s) for s in document["statement"]]


def allowed(doc: dict[str, Any], function: str, action: str) -> set[str]:
    """Every resource one function's role may use ``action`` on."""
    return {
        resource
        for s in statements(doc, function)
        if action in s["actions"]
        for resource in s["resources"]
    }


def arn(bucket: str, key: str) -> str:
    ident = bucket.replace("-", "_")
    return f"${{aws_s3_bucket.{ident}.arn}}/{key}"


LAKE, REPORTS = "glacier-test-lake", "glacier-test-reports"


# -- the module is valid -----------------------------------------------------------------


def test_generated_module_loads_in_terraforms_own_loader(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    assert_terraform_loads(generated[0])


def test_checkov_passes_and_every_skip_carries_its_reason_beside_the_block(
    generated: tuple[Path, dict[str, Any]], checkov: CheckovReport
) -> None:
    source = (generated[0] / "main.tf").read_text()
    assert checkov.skipped, "the generated module skips checks, each with a reason"
    for skip in checkov.skipped:
        assert skip.reason.strip(), f"{skip.check_id} on {skip.resource} has no reason"
        type_, name = skip.resource.split(".")[-2:]
        header = f'resource "{type_}" "{name}" {{\n'
        if skip.resource.startswith("data."):
            header = f'data "{type_}" "{name}" {{\n'
        block = source[source.index(header) :].split("\n}\n", 1)[0]
        assert f"# checkov:skip={skip.check_id}:{skip.reason}" in block


def test_only_the_expected_checks_are_skipped(checkov: CheckovReport) -> None:
    skipped = {(s.check_id, s.resource.split(".")[0]) for s in checkov.skipped}
    expected = {
        ("CKV_AWS_18", "aws_s3_bucket"),
        ("CKV_AWS_144", "aws_s3_bucket"),
        ("CKV2_AWS_62", "aws_s3_bucket"),
        ("CKV_AWS_158", "aws_cloudwatch_log_group"),
        ("CKV_AWS_115", "aws_lambda_function"),  # no reserved_concurrency
        ("CKV_AWS_116", "aws_lambda_function"),
        ("CKV_AWS_117", "aws_lambda_function"),
        ("CKV_AWS_173", "aws_lambda_function"),
        ("CKV_AWS_272", "aws_lambda_function"),
    }
    if on_lambda.config.log_retention_days < 365:  # LambdaConfig's default decides
        expected.add(("CKV_AWS_338", "aws_cloudwatch_log_group"))
    assert skipped == expected


def test_concurrency_and_retention_skips_follow_each_functions_lambda_config(
    tmp_path: Path,
) -> None:
    big = Pipeline(name="big").source(raw).transform(heavy).to(clean_sales)
    big = big.transform(glance).to(summary)
    write(big, tmp_path)
    assert_terraform_loads(tmp_path)
    report = assert_checkov_passes(tmp_path)
    skips = {
        (s.check_id, s.resource): s.reason
        for s in report.skipped
        if s.check_id in {"CKV_AWS_115", "CKV_AWS_338"}
    }
    assert skips == {
        ("CKV_AWS_115", "aws_lambda_function.big_glance"): (
            "concurrency is not capped because LambdaConfig.reserved_concurrency is None;"
            " set it to reserve and cap concurrent executions"
        ),
        (
            "CKV_AWS_338",
            "aws_cloudwatch_log_group.big_glance",
        ): "retention set by LambdaConfig.log_retention_days=14",
    }
    with open(tmp_path / "main.tf") as f:
        found = functions_by_name(hcl2.load(f))
    _, function = found["big-heavy"]
    assert function["architectures"] == ['"arm64"']
    assert function["memory_size"] == 2048
    assert function["timeout"] == 900
    assert function["reserved_concurrent_executions"] == 4
    assert function["ephemeral_storage"][0]["size"] == 4096
    variables = text(function["environment"][0]["variables"])
    # A "${" in a value stays literal text, not a Terraform interpolation.
    assert variables == {
        "GLACIER_FUNCTION": "big-heavy",
        "GLACIER_TASK": f"{heavy.reference().module}:heavy",
        "GREETING": "costs $${5}",
        "POLARS_MAX_THREADS": "2",
    }
    assert text(found["big-glance"][1]["architectures"]) == [on_short_logs.config.architecture]


# -- least privilege -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "reads", "writes"),
    [
        pytest.param(
            "etl-clean",
            {
                arn(LAKE, "raw/*.parquet"),
                arn(LAKE, "ref/customers.parquet"),
                arn(LAKE, "stage/sales.parquet"),
                arn(LAKE, "stage/customers.parquet"),
            },
            {arn(LAKE, "stage/sales.parquet"), arn(LAKE, "stage/customers.parquet")},
            id="task-in-two-steps-glob-source",
        ),
        pytest.param(
            "etl-summarize",
            {
                arn(LAKE, "stage/sales.parquet"),
                arn(REPORTS, "daily/summary.parquet"),
                arn(REPORTS, "daily/.summary.parquet.glacier.json"),
            },
            {
                arn(REPORTS, "daily/summary.parquet"),
                arn(REPORTS, "daily/.summary.parquet.glacier.json"),
            },
            id="cached-task-with-record",
        ),
    ],
)
def test_each_role_reads_its_sources_and_writes_only_its_targets(
    generated: tuple[Path, dict[str, Any]], function: str, reads: set[str], writes: set[str]
) -> None:
    doc = generated[1]
    assert allowed(doc, function, "s3:GetObject") == reads
    assert allowed(doc, function, "s3:PutObject") == writes
    assert allowed(doc, function, "s3:AbortMultipartUpload") == writes


def objects_touched(doc: dict[str, Any], function: str) -> set[str]:
    """Every object one function's role may use any S3 action on (buckets left out)."""
    return {
        resource
        for s in statements(doc, function)
        if any(a.startswith("s3:") for a in s["actions"])
        for resource in s["resources"]
        if "}/" in resource  # an object ARN: "${aws_s3_bucket.x.arn}/key"
    }


@pytest.mark.parametrize(
    ("function", "other", "shared"),
    [
        # summarize reads clean's stage/sales.parquet: a declared source, read only.
        # Not stage/customers.parquet, which clean also writes.
        ("etl-summarize", "etl-clean", {arn(LAKE, "stage/sales.parquet")}),
        # clean reads nothing summarize writes, nor its cache record.
        ("etl-clean", "etl-summarize", set()),
    ],
    ids=["consumer-reads-only-its-source", "producer-touches-nothing-downstream"],
)
def test_no_role_reads_or_writes_another_functions_keys_beyond_its_sources(
    generated: tuple[Path, dict[str, Any]], function: str, other: str, shared: set[str]
) -> None:
    """What ``other`` writes, ``function`` may touch only where it is a declared source.

    ``shared`` is written out from the pipeline above, not read back from the
    policy, so a role that gains any action on another function's target fails.
    """
    doc = generated[1]
    theirs = allowed(doc, other, "s3:PutObject")
    assert theirs  # the other function writes something, or this proves nothing

    def reached(patterns: set[str]) -> set[str]:
        # IAM's * and ? match as fnmatch's do (across "/" too): a widened glob counts.
        return {key for key in theirs if any(fnmatchcase(key, p) for p in patterns)}

    assert reached(objects_touched(doc, function)) == shared
    assert reached(allowed(doc, function, "s3:GetObject")) == shared
    assert not reached(allowed(doc, function, "s3:PutObject"))
    assert not reached(allowed(doc, function, "s3:AbortMultipartUpload"))


def test_no_role_has_a_wildcard_on_s3_and_logs_go_to_its_own_group_only(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    doc = generated[1]
    for name, (ident, _) in functions_by_name(doc).items():
        for statement in statements(doc, name):
            assert statement["effect"] == "Allow"
            if any(a.startswith("s3:") for a in statement["actions"]):
                assert "*" not in statement["resources"]
                # a bucket (bare reference) or objects under one
                assert all(
                    r.startswith(("aws_s3_bucket.", "${aws_s3_bucket."))
                    for r in statement["resources"]
                )
            if any(a.startswith("logs:") for a in statement["actions"]):
                assert statement["resources"] == [f"${{aws_cloudwatch_log_group.{ident}.arn}}:*"]
            if "*" in statement["resources"]:
                assert set(statement["actions"]) == {
                    "xray:PutTelemetryRecords",
                    "xray:PutTraceSegments",
                }
        log_group = resources(doc, "aws_cloudwatch_log_group")[ident]
        assert text(log_group["name"]) == f"/aws/lambda/{name}"


def test_listing_is_limited_to_the_prefixes_the_step_code_lists(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    doc = generated[1]
    listed = {
        s["resources"][0]: set(s["condition"][0]["values"])
        for s in statements(doc, "etl-clean")
        if s["actions"] == ["s3:ListBucket"]
    }
    lake = "aws_s3_bucket.glacier_test_lake.arn"
    assert listed == {
        lake: {
            "raw/*",
            "ref/customers.parquet/",
            "stage/sales.parquet/",
            "stage/customers.parquet/",
        }
    }
    for s in statements(doc, "etl-clean"):
        if s["actions"] == ["s3:ListBucket"]:
            assert s["condition"][0]["test"] == "StringLike"
            assert s["condition"][0]["variable"] == "s3:prefix"


@pytest.mark.parametrize(
    ("path", "readable", "listed"),
    [
        ("raw/*.parquet", "raw/*.parquet", {"raw/*"}),
        ("raw/2024-*/part.parquet", "raw/2024-*/part.parquet", {"raw/*"}),
        ("raw/**/*.parquet", "raw/*.parquet", {"raw/*"}),  # IAM's * spans folders as ** does
        ("raw/**/day=1/*.parquet", "raw/*day=1/*.parquet", {"raw/*"}),
        ("raw/part-??.parquet", "raw/part-??.parquet", {"raw/*"}),
        ("raw/part-[0-9].parquet", "raw/part-?.parquet", {"raw/*"}),  # one character of a class
        ("raw/day=1/data.parquet", "raw/day=1/data.parquet", {"raw/day=1/data.parquet/"}),
        ("*.parquet", "*.parquet", None),  # a glob at the root lists the bucket's root
    ],
    ids=[
        "glob",
        "glob-in-folder-name",
        "recursive-glob",
        "recursive-glob-then-folder",
        "one-character-wildcards",
        "character-class",
        "plain-key",
        "glob-at-root",
    ],
)
def test_a_source_is_readable_and_listable_only_as_far_as_its_pattern_reaches(
    tmp_path: Path, path: str, readable: str, listed: set[str] | None
) -> None:
    source = aws.bucket(bucket="glacier-test-in", path=path)
    target = aws.bucket(bucket="glacier-test-out", path="out/result.parquet")
    plan = write(Pipeline(name="one").source(source).transform(clean).to(target), tmp_path)
    document = plan.module.to_dict()["data"]["aws_iam_policy_document"]["one_clean"]
    by_sid = {s["sid"]: s for s in document["statement"]}
    reads = set(by_sid["ReadSourcesAndOwnTargets"]["resources"])
    assert reads == {
        arn("glacier-test-in", readable),
        arn("glacier-test-out", "out/result.parquet"),
    }
    listing = {
        s["resources"][0]: s.get("condition")
        for s in document["statement"]
        if s["actions"] == ["s3:ListBucket"]
    }
    condition = listing["${aws_s3_bucket.glacier_test_in.arn}"]
    if listed is None:
        assert condition is None
    else:
        assert condition == {
            "test": "StringLike",
            "values": sorted(listed),
            "variable": "s3:prefix",
        }


def test_every_roles_statements_are_what_the_access_model_says(generated: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    doc = generated[1]
    specs = make_plan(etl(), tmp_path).functions
    assert {spec.name for spec in specs} == set(functions_by_name(doc))
    for spec in specs:
        access = function_access(spec).only(["s3", "s3a"])

        def arn_of(uri: str) -> str:
            name, _, key = uri.partition("://")[2].partition("/")
            return arn(name, key)  # the etl pipeline's globs are IAM patterns as they are

        listed: dict[str, set[str]] = {}
        for listing in access.lists:
            name, _, key = listing.prefix.partition("://")[2].partition("/")
            listed.setdefault(f"aws_s3_bucket.{name.replace('-', '_')}.arn", set()).add(key + ("*" if listing.deeper else ""))
        assert allowed(doc, spec.name, "s3:GetObject") == {arn_of(u) for u in access.reads}
        writes = {arn_of(u) for u in access.writes | access.temporaries}
        assert allowed(doc, spec.name, "s3:PutObject") == writes
        assert allowed(doc, spec.name, "s3:AbortMultipartUpload") == writes
        lists = [s for s in statements(doc, spec.name) if s["actions"] == ["s3:ListBucket"]]
        assert {s["resources"][0]: set(s["condition"][0]["values"]) for s in lists} == listed
        s3_actions = {a for s in statements(doc, spec.name) for a in s["actions"] if a.startswith("s3:")}
        assert s3_actions == {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListBucket"}


def statement_block(source: str, sid: str) -> str:
    """The text of the ``statement`` block with ``sid``, comments included."""
    found = re.search(rf'\n\s+sid\s+= "{sid}"\n', source)
    assert found is not None, f"no statement {sid}"
    start = source.rindex("statement {", 0, found.start())
    return source[start : source.index("\n  }\n", start)]


def test_a_glob_source_s_grants_say_what_iam_cannot_narrow_beside_the_statement(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    source = (generated[0] / "main.tf").read_text()
    clean = source[source.index('data "aws_iam_policy_document" "etl_clean" {') :]
    read = statement_block(clean, "ReadSourcesAndOwnTargets")
    assert "# IAM's * also matches '/': raw/*.parquet also grants keys in deeper folders" in read
    listing = statement_block(clean, "ListKnownPrefixes0")
    assert "# s3:prefix is the folder a glob is listed under (raw/)" in listing
    assert "cannot be narrowed to a suffix" in listing
    summarize = source[source.index('data "aws_iam_policy_document" "etl_summarize" {') :]
    assert "IAM's *" not in statement_block(summarize, "ReadSourcesAndOwnTargets")  # no glob there


@pytest.mark.parametrize(
    "path",
    ["raw/%{x/*.parquet", "raw/${x/part.parquet", "raw/%{ if true }y%{ endif }/*.parquet", "raw/$${x}/%%{y/a.parquet"],
    ids=["open-directive", "open-interpolation", "whole-directives", "escapes"],
)
def test_a_path_holding_terraform_template_sequences_is_written_as_literal_text(tmp_path: Path, path: str) -> None:
    source = aws.bucket(bucket="glacier-test-in", path=path)
    target = aws.bucket(bucket="glacier-test-out", path="out/" + path.replace("*", "all"))
    plan = write(Pipeline(name="one").source(source).transform(clean).to(target), tmp_path)
    assert_terraform_loads(tmp_path)
    with open(tmp_path / "main.tf") as f:
        hcl2.load(f)
    document = plan.module.to_dict()["data"]["aws_iam_policy_document"]["one_clean"]
    writes = {s["sid"]: s for s in document["statement"]}["WriteOwnTargets"]["resources"]
    escaped = ("out/" + path.replace("*", "all")).replace("${", "$${").replace("%{", "%%{")
    assert arn("glacier-test-out", escaped) in writes


def test_a_path_holding_terraform_template_sequences_passes_checkov(tmp_path: Path) -> None:
    source = aws.bucket(bucket="glacier-test-in", path="raw/%{x/${y/*.parquet")
    target = aws.bucket(bucket="glacier-test-out", path="out/%{ if true }y%{ endif }/${z.parquet")
    write(Pipeline(name="one").source(source).transform(clean).to(target), tmp_path)
    report = assert_checkov_passes(tmp_path)
    assert report.passed


def test_a_bucket_named_only_by_uri_is_granted_by_arn_and_not_created(tmp_path: Path) -> None:
    foreign = Bucket.from_uri("s3://someone-elses-bucket/shared/input.parquet")
    write(Pipeline(name="one").source(foreign).transform(clean).to(clean_sales), tmp_path)
    assert_terraform_loads(tmp_path)
    with open(tmp_path / "main.tf") as f:
        doc = hcl2.load(f)
    assert "someone_elses_bucket" not in resources(doc, "aws_s3_bucket")
    partition = "arn:${data.aws_partition.current.partition}:s3:::someone-elses-bucket"
    assert allowed(doc, "one-clean", "s3:GetObject") == {
        f"{partition}/shared/input.parquet",
        arn(LAKE, "stage/sales.parquet"),
    }
    assert f"{partition}/shared/input.parquet" not in allowed(doc, "one-clean", "s3:PutObject")


# -- functions ------------------------------------------------------------------------------


def test_one_function_per_serverless_task_and_none_for_the_local_one(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    assert set(functions_by_name(generated[1])) == {"etl-clean", "etl-summarize"}


def test_each_function_is_built_as_its_lambda_config_says(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    out, doc = generated
    config = on_lambda.config  # memory=1024, timeout=300; the rest LambdaConfig's defaults
    ((artifact_ident, code),) = resources(doc, "aws_s3_object").items()
    zip_name = f"glacier-lambda-{config.runtime}-{config.architecture}.zip"
    zip_path = out / "artifacts" / zip_name
    expected_hash = base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()
    assert text(code["source"]) == f"${{path.module}}/artifacts/{zip_name}"
    assert text(code["key"]) == f"lambda/{zip_name}"
    assert text(code["bucket"]) == "aws_s3_bucket.glacier_artifacts.id"
    assert text(code["source_hash"]) == expected_hash
    for name, (ident, function) in functions_by_name(doc).items():
        assert text(function["handler"]) == HANDLER
        assert text(function["runtime"]) == config.runtime
        assert text(function["architectures"]) == [config.architecture]
        assert function["memory_size"] == 1024
        assert function["timeout"] == 300
        assert function["ephemeral_storage"][0]["size"] == config.ephemeral_storage
        assert text(function["s3_bucket"]) == f"aws_s3_object.{artifact_ident}.bucket"
        assert text(function["s3_key"]) == f"aws_s3_object.{artifact_ident}.key"
        assert text(function["source_code_hash"]) == expected_hash
        assert text(function["role"]) == f"aws_iam_role.{ident}.arn"
        assert text(function["tracing_config"][0]["mode"]) == "Active"
        task = {"etl-clean": clean, "etl-summarize": summarize}[name]
        pinned = f"{task.reference().module}:{task.name}"  # the one task the handler runs
        assert text(function["environment"][0]["variables"]) == {"GLACIER_FUNCTION": name, "GLACIER_TASK": pinned}
        assert "reserved_concurrent_executions" not in function
        assert set(text(function["depends_on"])) == {
            f"aws_cloudwatch_log_group.{ident}",
            f"aws_iam_role_policy.{ident}",
        }


def test_roles_are_assumable_by_lambda_only(generated: tuple[Path, dict[str, Any]]) -> None:
    doc = generated[1]
    trusts = blocks(doc, "data", "aws_iam_policy_document")
    for ident, role in resources(doc, "aws_iam_role").items():
        assert (
            text(role["assume_role_policy"])
            == f"data.aws_iam_policy_document.{ident}_assume_role.json"
        )
        (statement,) = (text(s) for s in trusts[f"{ident}_assume_role"]["statement"])
        assert statement["actions"] == ["sts:AssumeRole"]
        assert statement["principals"] == [
            {"type": "Service", "identifiers": ["lambda.amazonaws.com"]}
        ]


# -- buckets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ident", ["glacier_test_lake", "glacier_test_reports", "glacier_artifacts"]
)
def test_every_bucket_is_private_encrypted_versioned_and_cleans_up_uploads(
    generated: tuple[Path, dict[str, Any]], ident: str
) -> None:
    doc = generated[1]
    access = text(resources(doc, "aws_s3_bucket_public_access_block")[ident])
    assert {k: v for k, v in access.items() if k != "bucket"} == {
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    }
    sse = text(resources(doc, "aws_s3_bucket_server_side_encryption_configuration")[ident])
    (rule,) = sse["rule"]
    assert rule["bucket_key_enabled"] is True
    assert rule["apply_server_side_encryption_by_default"] == [{"sse_algorithm": "aws:kms"}]
    versioning = text(resources(doc, "aws_s3_bucket_versioning")[ident])
    assert versioning["versioning_configuration"] == [{"status": "Enabled"}]
    ownership = text(resources(doc, "aws_s3_bucket_ownership_controls")[ident])
    assert ownership["rule"] == [{"object_ownership": "BucketOwnerEnforced"}]
    lifecycle = text(resources(doc, "aws_s3_bucket_lifecycle_configuration")[ident])
    aborts = [r for r in lifecycle["rule"] if "abort_incomplete_multipart_upload" in r]
    assert aborts and aborts[0]["status"] == "Enabled" and "filter" in aborts[0]


def test_data_buckets_keep_their_names_and_the_artifacts_bucket_is_made_unique(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    names = {
        ident: text(b["bucket"]) for ident, b in resources(generated[1], "aws_s3_bucket").items()
    }
    assert names == {
        "glacier_test_lake": LAKE,
        "glacier_test_reports": REPORTS,
        "glacier_artifacts": "glacier-etl-artifacts-${data.aws_caller_identity.current.account_id}-${var.aws_region}",
    }


def test_an_artifact_bucket_option_names_the_artifacts_bucket(tmp_path: Path) -> None:
    plan = write(etl(), tmp_path, artifact_bucket="my-deploy-bucket")
    buckets = plan.module.to_dict()["resource"]["aws_s3_bucket"]
    assert buckets["glacier_artifacts"]["bucket"] == "my-deploy-bucket"
    assert (
        "data" not in plan.module.to_dict()
        or "aws_caller_identity" not in plan.module.to_dict()["data"]
    )


def test_the_provider_and_region_come_from_the_aws_config(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    doc = generated[1]
    (settings,) = doc["terraform"]
    (required,) = settings["required_providers"]
    assert text(required["aws"]) == {"source": "hashicorp/aws", "version": "~> 5.0"}
    region = next(
        v for entry in doc["variable"] for k, v in entry.items() if text(k) == "aws_region"
    )
    assert text(region["default"]) == "us-east-1"
    (provider,) = (v for entry in doc["provider"] for k, v in entry.items() if text(k) == "aws")
    assert text(provider["region"]) == "var.aws_region"


def test_outputs_name_each_function_and_the_artifacts_bucket(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    outputs = {
        text(k): text(v["value"]) for entry in generated[1]["output"] for k, v in entry.items()
    }
    assert outputs == {
        "aws_artifacts_bucket": "aws_s3_bucket.glacier_artifacts.bucket",
        "etl_clean_function_name": "aws_lambda_function.etl_clean.function_name",
        "etl_clean_function_arn": "aws_lambda_function.etl_clean.arn",
        "etl_summarize_function_name": "aws_lambda_function.etl_summarize.function_name",
        "etl_summarize_function_arn": "aws_lambda_function.etl_summarize.arn",
    }


# -- determinism and errors ------------------------------------------------------------------


def test_generating_twice_writes_the_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write(etl(), first)
    write(etl(), second)
    assert (first / "main.tf").read_bytes() == (second / "main.tf").read_bytes()
    assert str(tmp_path) not in (first / "main.tf").read_text()


def test_a_log_retention_cloudwatch_refuses_is_an_error_naming_the_task(tmp_path: Path) -> None:
    odd = aws.serverless(config=LambdaConfig(log_retention_days=10))
    task = odd.task(name="odd")(clean.func)
    pipeline = Pipeline(name="odd").source(raw).transform(task).to(clean_sales)
    plan = make_plan(pipeline, tmp_path)
    with pytest.raises(
        ValueError, match=r"log_retention_days=10 of task 'odd'.*\n\nUse one of: 0, 1, 3"
    ):
        key = (odd.config.runtime, odd.config.architecture)
        add_resources(plan, {key: small_artifact(tmp_path, *key)})


def test_generate_builds_one_artifact_per_runtime_and_architecture_and_fills_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real build downloads wheels for Lambda's platform; here a stand-in
    # records what generate asks for and writes a small zip.
    calls: list[tuple[list[tuple[str, Path]], LambdaConfig, Path]] = []
    handed: list[list[str]] = []  # the functions each build was given, for their schemes

    def build_artifact(modules: Any, config: LambdaConfig, out_dir: Path, functions: Any = ()) -> Artifact:
        calls.append((list(modules), config, out_dir))
        handed.append(sorted(spec.task.name for spec in functions))
        return small_artifact(out_dir.parent, config.runtime, config.architecture)

    fake = types.ModuleType("glacier_aws.infra.artifact")
    fake.build_artifact = build_artifact  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "glacier_aws.infra.artifact", fake)
    heavy_out = aws.bucket(bucket=REPORTS, path="heavy/out.parquet")
    big = Pipeline(name="big").source(summary).transform(heavy).to(heavy_out)
    both = Pipeline.compose(etl(), big, name="etl")
    plan = make_plan(both, tmp_path)
    generate(plan)

    this_file = Path(__file__).resolve()
    runtime = on_lambda.config.runtime  # LambdaConfig's default, as on_arm's
    assert on_lambda.config.architecture == "x86_64"
    assert [(c[1].runtime, c[1].architecture, c[2]) for c in calls] == [
        (runtime, "arm64", plan.artifact_dir),
        (runtime, "x86_64", plan.artifact_dir),
    ]
    assert all(modules == [(clean.func.__module__, this_file)] for modules, *_ in calls)
    assert sorted(name for names in handed for name in names) == sorted(spec.task.name for spec in plan.functions)
    assert plan.manifest == {
        task: DeploymentEntry(
            provider="aws",
            executor="lambda",
            function_name=f"etl-{task}",
            module=clean.func.__module__,
            qualname=task,
            extras={"region": "us-east-1", "runtime": runtime, "architecture": architecture, "logs": f"CloudWatch (/aws/lambda/etl-{task})"},
        )
        for task, architecture in [("clean", "x86_64"), ("summarize", "x86_64"), ("heavy", "arm64")]
    }
    assert len(plan.module.to_dict()["resource"]["aws_s3_object"]) == 2


def test_aws_in_two_regions_is_refused_with_the_regions_named(tmp_path: Path) -> None:
    europe = Provider(config=AwsConfig(region="eu-west-1"))
    elsewhere = europe.bucket(bucket="glacier-test-eu", path="out/x.parquet")
    pipeline = Pipeline(name="two").source(raw).transform(clean).to(elsewhere)
    with pytest.raises(ValueError, match=r"several regions \(eu-west-1, us-east-1\)"):
        add_resources(make_plan(pipeline, tmp_path), {})


def test_skip_reasons_are_specific_not_boilerplate(checkov: CheckovReport) -> None:
    reasons = {s.check_id: s.reason for s in checkov.skipped}
    assert re.search(r"synchronous", reasons["CKV_AWS_116"], re.I)
    assert "VPC" in reasons["CKV_AWS_117"]
    assert "code_signing_config_arn" in reasons["CKV_AWS_272"]
    assert "secrets" in reasons["CKV_AWS_173"]
    assert "reserved_concurrency" in reasons["CKV_AWS_115"]
