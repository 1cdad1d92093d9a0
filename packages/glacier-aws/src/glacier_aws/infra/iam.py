"""Least-privilege IAM for one Lambda function: exactly its sources, targets and logs.

What the step code touches is computed once, for every provider, by
:mod:`glacier.infra.access`; this module renders it for S3 (and so what each role allows):

- sources: ``HEAD`` and ranged ``GET`` (``s3:GetObject``) of each source object; a
  glob source is listed under the folder before its first glob character
  (``s3:ListBucket`` with an ``s3:prefix`` condition);
- a glob is granted as the narrowest pattern IAM can express: ``*`` for ``*`` and
  ``**``, ``?`` for ``?`` and for a ``[...]`` class. IAM's ``*`` and ``?`` also match
  ``/``, so keys in deeper folders that fit the pattern are granted too, and the
  listing condition is on the folder, which cannot be narrowed to a suffix such as
  ``*.parquet``. The generated statements say so beside them;
- targets: one (multipart) upload (``s3:PutObject``, ``s3:AbortMultipartUpload``), a
  ``GET`` of the written footer to count rows, and with ``cache=True`` the record
  ``.NAME.glacier.json`` beside the target; s3fs lists ``KEY/`` after a ``HEAD`` that
  found nothing (is it a directory?);
- logs: its own log group only; X-Ray traces (``*``: X-Ray has no resource-level
  permissions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from glacier.infra.access import function_access
from glacier.infra.terraform import Block

if TYPE_CHECKING:
    from glacier.bucket import Bucket
    from glacier.infra.generate import FunctionSpec

__all__ = ["role_statements", "is_s3", "split_uri", "literal", "S3_SCHEMES"]

#: The URI schemes of S3 objects (``s3a://`` as Spark writes it).
S3_SCHEMES = ("s3", "s3a")

_GLOB_CHARS = "*?["


def role_statements(spec: FunctionSpec, bucket_arn: Callable[[str], str], log_group_arn: str | None) -> list[Block]:
    """The least-privilege statements of one function's role, rendered from the access model.

    What the function touches on S3 is :func:`glacier.infra.access.function_access`;
    this renders it as IAM: ``s3:GetObject`` on what it reads, ``s3:PutObject`` and
    ``s3:AbortMultipartUpload`` on what it writes, ``s3:ListBucket`` conditioned on
    the prefixes it lists.

    Parameters
    ----------
    spec
        The function.
    bucket_arn
        The ARN (a Terraform template) of an S3 bucket by name.
    log_group_arn
        The ARN of the function's own log group; ``None`` for the role a function on
        another cloud assumes (:mod:`glacier_aws.infra.federation`), which writes no
        CloudWatch logs or X-Ray traces.
    """
    access = function_access(spec).only(S3_SCHEMES)
    read = {_object_arn(bucket_arn, *_split(uri)) for uri in access.reads}
    write = {_object_arn(bucket_arn, *_split(uri)) for uri in access.writes | access.temporaries}
    prefixes: dict[str, set[str]] = {}
    unconditioned: set[str] = set()  # buckets listed from their root
    for listing in access.lists:
        name, key = _split(listing.prefix)
        if listing.deeper and not key:
            unconditioned.add(name)
        else:
            prefixes.setdefault(name, set()).add(literal(key) + ("*" if listing.deeper else ""))
    read_notes: set[str] = set()
    list_notes: dict[str, set[str]] = {}
    for uri in access.reads:
        name, key = _split(uri)
        if _first_glob(key) >= 0:
            shown = key.replace("\r", "\\r").replace("\n", "\\n")  # a comment is one line
            read_notes.add(
                f"IAM's * also matches '/': {_iam_glob(shown)} also grants keys in deeper folders"
                " that fit it; IAM has no pattern that stops at a folder"
            )
            folder = shown[: _first_glob(shown)].rpartition("/")[0]
            list_notes.setdefault(name, set()).add(
                f"s3:prefix is the folder a glob is listed under ({folder + '/' if folder else 'the root'}),"
                f" so listing for {shown} cannot be narrowed to a suffix"
            )

    statements = [_allow("ReadSourcesAndOwnTargets", ["s3:GetObject"], read, comments=read_notes)]
    if write:
        statements.append(
            _allow("WriteOwnTargets", ["s3:AbortMultipartUpload", "s3:PutObject"], write)
        )
    for index, name in enumerate(sorted(prefixes.keys() | unconditioned)):
        condition = None
        if name not in unconditioned:
            condition = Block(
                test="StringLike", variable="s3:prefix", values=sorted(prefixes[name])
            )
        statements.append(
            _allow(
                f"ListKnownPrefixes{index}",
                ["s3:ListBucket"],
                [bucket_arn(name)],
                condition,
                comments=list_notes.get(name, ()),
            )
        )
    if log_group_arn is None:
        return statements
    statements.append(
        _allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"])
    )
    # X-Ray has no resource-level permissions: "*" is the only resource it takes.
    statements.append(
        _allow("WriteTraces", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"])
    )
    return statements


def _allow(
    sid: str,
    actions: list[str],
    resources: Iterable[str],
    condition: Block | None = None,
    *,
    comments: Iterable[str] = (),
) -> Block:
    """One ``Allow`` statement of an ``aws_iam_policy_document``, its lists sorted."""
    statement: dict[str, Any] = {
        "sid": sid,
        "effect": "Allow",
        "actions": sorted(actions),
        "resources": sorted(resources),
    }
    if condition is not None:
        statement["condition"] = condition
    return Block(statement, comments=sorted(comments))


# -- keys and ARNs -------------------------------------------------------------------


def is_s3(bucket: Bucket) -> bool:
    """Whether the bucket is on S3 (``s3://`` or ``s3a://``)."""
    return bucket.scheme in S3_SCHEMES


def split_uri(bucket: Bucket) -> tuple[str, str]:
    """(bucket name, key) from the bucket's normalized URI."""
    return _split(bucket.uri)


def _split(uri: str) -> tuple[str, str]:
    name, _, key = uri.split("://", 1)[1].partition("/")
    return name, key


def _first_glob(key: str) -> int:
    found = [key.index(c) for c in _GLOB_CHARS if c in key]
    return min(found) if found else -1


def _object_pattern(key: str) -> str:
    """An IAM resource pattern (template-escaped) for a key or a glob of keys.

    A glob becomes the narrowest IAM pattern that still matches every key it matches
    (:func:`_iam_glob`).
    """
    return literal(_iam_glob(key))


def _iam_glob(key: str) -> str:
    """The glob ``key`` as an IAM pattern: ``*`` and ``?`` as they are, ``**/`` and a
    ``[...]`` class as the IAM wildcard that covers them (``*``, ``?``).

    IAM's wildcards also match ``/``, so ``raw/**/*.parquet`` becomes ``raw/*.parquet``.
    A plain key (no glob character) is returned as it is.
    """
    out: list[str] = []
    i = 0
    while i < len(key):
        char = key[i]
        if key.startswith("**/", i):
            out.append("*")  # zero or more folders: IAM's * spans them
            i += 3
        elif char == "*":
            out.append("*")
            i += 1
        elif char == "?":
            out.append("?")
            i += 1
        elif char == "[":
            # One character of a class; an unclosed "[" could match anything after it.
            first_member = i + (2 if key.startswith(("[!", "[^"), i) else 1)
            close = key.find("]", first_member + 1)  # a "]" right after "[" is a member
            if close < 0:
                out.append("*")
                break
            out.append("?")
            i = close + 1
        else:
            out.append(char)
            i += 1
    return re.sub(r"\*+", "*", "".join(out))


def _object_arn(bucket_arn: Callable[[str], str], name: str, key: str) -> str:
    """The ARN pattern of the object ``key`` (or the objects of a glob) in bucket ``name``."""
    return f"{bucket_arn(name)}/{_object_pattern(key)}"


def literal(text: str) -> str:
    """``text`` as a Terraform template that yields exactly ``text``."""
    return text.replace("${", "$${").replace("%{", "%%{")
