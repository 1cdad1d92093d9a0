"""The generated IAM held against the access model: what a provider test suite checks.

:func:`role_problems` reads a generated ``main.tf`` back (python-hcl2) and, for every
Lambda function of the pipeline, compares what its role allows on S3 with what
:func:`glacier.infra.access.function_access` says the function's steps touch: each
source object read, each target (and its cache record) written, each listed prefix.
A grant the steps do not need, or a need without a grant, is a problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glacier.pipeline import Pipeline

__all__ = ["role_problems"]

_SCHEMES = ("s3", "s3a")


def role_problems(generated_dir: str | Path, pipeline: Pipeline) -> list[str]:
    """Every difference between the generated roles and the access model, as sentences.

    Globs are compared as written: Glacier's ``*`` and ``?`` are IAM's too.
    """
    import hcl2

    from glacier.testing.terraform import blocks, unquote

    from glacier.infra.access import function_access
    from glacier.infra.generate import function_specs

    with open(Path(generated_dir) / "main.tf") as f:
        doc = hcl2.load(f)
    functions = {unquote(body["function_name"]): ident for ident, body in blocks(doc, "resource", "aws_lambda_function").items()}
    policies = blocks(doc, "data", "aws_iam_policy_document")
    problems = []
    for spec in function_specs(pipeline, pipeline.build()).get("aws", {}).values():
        ident = functions.get(spec.name)
        if ident is None:
            problems.append(f"function {spec.name!r} is not in the generated module")
            continue
        statements = [unquote(s) for s in policies.get(ident, {}).get("statement", [])]
        access = function_access(spec).only(_SCHEMES)
        writes = {_arn(u) for u in access.writes | access.temporaries}
        expected = {"s3:GetObject": {_arn(u) for u in access.reads}, "s3:PutObject": writes, "s3:AbortMultipartUpload": writes}
        for action, want in expected.items():
            have = {r for s in statements if action in s["actions"] for r in s["resources"]}
            problems += [f"{spec.name}: {action} on {r} is granted but no step needs it" for r in sorted(have - want)]
            problems += [f"{spec.name}: {action} on {r} is needed but not granted" for r in sorted(want - have)]
        listed: dict[str, set[str]] = {}
        for listing in access.lists:
            bucket, _, key = listing.prefix.partition("://")[2].partition("/")
            listed.setdefault(f"aws_s3_bucket.{_ident(bucket)}.arn", set()).add(key + ("*" if listing.deeper else ""))
        granted = {s["resources"][0]: set(s["condition"][0]["values"]) for s in statements if s["actions"] == ["s3:ListBucket"]}
        if granted != listed:
            problems.append(f"{spec.name}: s3:ListBucket is granted on {granted}, the steps list {listed}")
        other = {a for s in statements for a in s["actions"] if a.startswith("s3:")} - {*expected, "s3:ListBucket"}
        problems += [f"{spec.name}: {a} is granted but no step uses it" for a in sorted(other)]
    return problems


def _ident(bucket: str) -> str:
    from glacier.infra.terraform import terraform_identifier

    return terraform_identifier(bucket.replace("-", "_"))  # as glacier_aws.infra.terraform names buckets


def _arn(uri: str) -> str:
    bucket, _, key = uri.partition("://")[2].partition("/")
    return f"${{aws_s3_bucket.{_ident(bucket)}.arn}}/{key}"
