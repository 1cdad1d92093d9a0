"""Least-privilege IAM for one Lambda function: exactly its sources, targets and logs.

What the step code does on S3 (and so what each role allows):

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

from glacier.run.cache import RECORD_SUFFIX
from glacier.infra.terraform import Block

if TYPE_CHECKING:
    from glacier.bucket import Bucket
    from glacier.infra.generate import FunctionSpec

__all__ = ["role_statements", "is_s3", "split_uri", "literal"]

_GLOB_CHARS = "*?["


def role_statements(spec: FunctionSpec, bucket_arn: Callable[[str], str], log_group_arn: str) -> list[Block]:
    """The least-privilege statements of one function's role.

    Parameters
    ----------
    spec
        The function.
    bucket_arn
        The ARN (a Terraform template) of an S3 bucket by name.
    log_group_arn
        The ARN of the function's own log group.
    """
    sources = [b for b in spec.sources if is_s3(b)]
    targets = [b for b in spec.targets if is_s3(b)]
    read: set[str] = set()
    write: set[str] = set()
    prefixes: dict[str, set[str]] = {}
    unconditioned: set[str] = set()  # buckets listed from their root
    read_notes: set[str] = set()
    list_notes: dict[str, set[str]] = {}
    for bucket in sources:
        name, key = split_uri(bucket)
        read.add(_object_arn(bucket_arn, name, _object_pattern(key)))
        prefix = _list_prefix(key)
        if prefix is None:
            unconditioned.add(name)
        else:
            prefixes.setdefault(name, set()).add(prefix)
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
    for bucket in targets:
        name, key = split_uri(bucket)
        objects = [key] + ([_record_key(key)] if spec.task.cache else [])
        for obj in objects:
            arn = _object_arn(bucket_arn, name, _template_key(obj))
            read.add(arn)
            write.add(arn)
        prefixes.setdefault(name, set()).add(_template_key(key) + "/")

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
    return bucket.scheme in ("s3", "s3a")


def split_uri(bucket: Bucket) -> tuple[str, str]:
    """(bucket name, key) from the bucket's normalized URI."""
    name, _, key = bucket.uri.split("://", 1)[1].partition("/")
    return name, key


def _first_glob(key: str) -> int:
    found = [key.index(c) for c in _GLOB_CHARS if c in key]
    return min(found) if found else -1


def _object_pattern(key: str) -> str:
    """An IAM resource pattern (template-escaped) for a key or a glob of keys.

    A glob becomes the narrowest IAM pattern that still matches every key it matches
    (:func:`_iam_glob`).
    """
    return _template_key(_iam_glob(key))


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


def _list_prefix(key: str) -> str | None:
    """The ``s3:prefix`` pattern a read of ``key`` may list, or None for the root.

    A glob is listed under the folder before its first glob character (polars and
    s3fs both list by folder, recursively for ``**``); a plain key only by s3fs's
    directory probe ``KEY/``.
    """
    first = _first_glob(key)
    if first < 0:
        return _template_key(key) + "/"
    folder = key[:first].rpartition("/")[0]
    if not folder:
        return None
    return literal(folder) + "/*"


def _record_key(key: str) -> str:
    """The cache record beside a target (see :func:`glacier.run.cache.record_uri`)."""
    parent, slash, name = key.rpartition("/")
    return f"{parent}{slash}.{name}{RECORD_SUFFIX}"


def _template_key(key: str) -> str:
    # A "*" or "?" in a key would be an IAM wildcard, but Glacier treats such keys
    # as globs (see _object_pattern), so a plain key holds neither.
    return literal(key)


def _object_arn(bucket_arn: Callable[[str], str], name: str, pattern: str) -> str:
    return f"{bucket_arn(name)}/{pattern}"


def literal(text: str) -> str:
    """``text`` as a Terraform template that yields exactly ``text``."""
    return text.replace("${", "$${").replace("%{", "%%{")
