"""Least-privilege IAM for one Cloud Function's service account: exactly its sources and targets.

What the step code touches is computed once, for every provider, by
:mod:`glacier.infra.access`; this module renders it for GCS as bucket-level IAM
bindings of three custom roles, each narrowed by an IAM condition on object names
(``resource.name``, ``projects/_/buckets/BUCKET/objects/NAME``):

- :data:`READER` (``storage.objects.get``) on each object the function reads: its
  sources, and its targets and cache records, which it reads back; a glob source is
  granted as every object under the folder before its first glob character
  (``resource.name.startsWith(...)``: IAM conditions have no glob), which the
  generated code says beside the binding;
- :data:`WRITER` (``storage.objects.create``, ``storage.objects.delete``: replacing an
  object needs both) on its targets, their cache records and the temporary names
  beside them (none on GCS, where one upload is atomic), by exact name;
- :data:`LISTER` (``storage.objects.list``) on each bucket the function lists in, with
  the condition ``resource.type == "storage.googleapis.com/Bucket"``: a list request's
  resource is the bucket, not an object, so GCS cannot scope listing to a prefix. The function can list every object name in such
  a bucket, but read none it was not granted; the generated code says so beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from glacier.infra.access import function_access

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec

__all__ = ["Binding", "bucket_bindings", "CUSTOM_ROLES", "READER", "WRITER", "LISTER", "GCS_SCHEMES", "LIST_CONDITION", "split_uri", "object_resource", "literal"]

#: The URI schemes of GCS objects.
GCS_SCHEMES = ("gs", "gcs")

#: The custom roles' IDs.
READER, WRITER, LISTER = "glacierObjectReader", "glacierObjectWriter", "glacierObjectLister"

#: Each custom role's permissions and description.
CUSTOM_ROLES: dict[str, tuple[tuple[str, ...], str]] = {
    READER: (("storage.objects.get",), "Glacier: read objects (narrowed to object names by each binding's condition)"),
    WRITER: (("storage.objects.create", "storage.objects.delete"), "Glacier: create and replace objects (narrowed to object names by each binding's condition)"),
    LISTER: (("storage.objects.list",), "Glacier: list object names in a bucket (GCS cannot narrow listing to a prefix)"),
}

_GLOB_CHARS = "*?["

#: The condition of a listing binding: a list request's resource is the bucket itself.
LIST_CONDITION = 'resource.type == "storage.googleapis.com/Bucket"'


@dataclass(frozen=True)
class Binding:
    """One bucket-level binding of a function's service account.

    Attributes
    ----------
    bucket
        The bucket's name.
    role
        One of :data:`READER`, :data:`WRITER`, :data:`LISTER`.
    expression
        The IAM condition (CEL): on object names, or on the bucket for listing.
    notes
        What the binding grants beyond the step's needs, and why; written beside it.
    """

    bucket: str
    role: str
    expression: str
    notes: tuple[str, ...] = ()


def split_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/key`` -> ``("bucket", "key")``.

    Examples
    --------
    >>> split_uri("gs://lake/raw/a.parquet")
    ('lake', 'raw/a.parquet')
    """
    bucket, _, key = uri.partition("://")[2].partition("/")
    return bucket, key


def literal(text: str) -> str:
    """``text`` as a Terraform template that yields exactly ``text``."""
    return text.replace("${", "$${").replace("%{", "%%{")


def object_resource(bucket: str, key: str) -> str:
    """The IAM resource name of an object (or of a name prefix).

    Examples
    --------
    >>> object_resource("lake", "raw/a.parquet")
    'projects/_/buckets/lake/objects/raw/a.parquet'
    """
    return f"projects/_/buckets/{bucket}/objects/{key}"


def _cel(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _condition(exact: set[str], prefixes: set[str], bucket: str) -> str:
    terms = [f"resource.name == {_cel(object_resource(bucket, key))}" for key in sorted(exact)]
    terms += [f"resource.name.startsWith({_cel(object_resource(bucket, key))})" for key in sorted(prefixes)]
    return " || ".join(terms)


def bucket_bindings(spec: FunctionSpec) -> list[Binding]:
    """The bindings of ``spec``'s service account, rendered from :func:`glacier.infra.access.function_access`.

    Notes
    -----
    For a function reading and writing objects of one bucket, ``lake``, the bindings
    are ``[('lake', 'glacierObjectReader'), ('lake', 'glacierObjectWriter'), ('lake',
    'glacierObjectLister')]``; the package's ``tests/test_terraform_gcp.py`` checks them
    against the access model.
    """
    access = function_access(spec).only(GCS_SCHEMES)
    reads: dict[str, tuple[set[str], set[str]]] = {}
    notes: dict[str, set[str]] = {}
    for uri in access.reads:
        bucket, key = split_uri(uri)
        exact, prefixes = reads.setdefault(bucket, (set(), set()))
        first = min((key.index(c) for c in _GLOB_CHARS if c in key), default=-1)
        if first < 0:
            exact.add(key)
            continue
        folder = key[:first]
        prefixes.add(folder)
        shown = key.replace("\r", "\\r").replace("\n", "\\n")
        notes.setdefault(bucket, set()).add(
            f"IAM conditions have no glob: the source {shown} is granted as every object whose name starts with {folder!r}"
        )
    writes: dict[str, set[str]] = {}
    for uri in access.writes | access.temporaries:
        bucket, key = split_uri(uri)
        writes.setdefault(bucket, set()).add(key)
    listed = {split_uri(entry.prefix)[0] for entry in access.lists}
    bindings = []
    for bucket in sorted(set(reads) | set(writes) | listed):
        if bucket in reads:
            exact, prefixes = reads[bucket]
            bindings.append(Binding(bucket, READER, _condition(exact, prefixes, bucket), tuple(sorted(notes.get(bucket, ())))))
        if bucket in writes:
            bindings.append(Binding(bucket, WRITER, _condition(writes[bucket], set(), bucket)))
        if bucket in listed:
            note = (
                "GCS cannot narrow listing to a prefix (a list request's resource is the bucket):"
                f" this lets the function list every object name in {bucket}, and read none it is not granted"
            )
            bindings.append(Binding(bucket, LISTER, LIST_CONDITION, (note,)))
    return bindings
