"""The role assignments each function's user-assigned identity gets, computed from the access model.

Every grant is scoped as narrowly as Azure RBAC allows, and narrowed further with an
ABAC condition (``condition_version = "2.0"``) to the blob paths the access model
(:mod:`glacier.infra.access`) says the function's steps touch:

- on each **container it reads or writes**: ``Storage Blob Data Reader`` (only reads) or
  ``Storage Blob Data Contributor`` (it writes a target there), with a condition that
  allows reading only the blobs it reads (``path StringLike``, a glob's ``*`` as is),
  listing only under the prefixes it lists, writing only its targets (and cache
  records), and deleting nothing: Blob Storage's one upload is atomic, so a step
  writes its target in place and never renames or removes;
- on **its own queue**: ``Storage Queue Data Reader`` and ``Storage Queue Data Message
  Processor`` (the queue trigger peeks, receives and deletes); on its poison queue
  ``Storage Queue Data Message Sender`` (the host moves a failing message there);
- on the **results container**: ``Storage Blob Data Contributor`` allowing only writes
  of blobs of its own steps (``*/<step>/*``), no reads, no deletes;
- on the **host's containers** (``azure-webjobs-hosts``, ``azure-webjobs-secrets``) in the
  deployment's host account: ``Storage Blob Data Owner``, which the Functions host
  needs for its leases and keys, and on **its own deployment container**
  ``Storage Blob Data Contributor`` (the platform reads the package from it).

Nothing is granted on the pipeline's storage account as a whole, nor on another
function's queue, results or packages.
"""

from __future__ import annotations

from dataclasses import dataclass

from glacier.infra.access import StepAccess, function_access
from glacier.infra.generate import FunctionSpec

__all__ = ["Grant", "blob_condition", "data_grants", "split_uri", "is_azure", "BLOB", "SCHEMES"]

#: The data action prefix of blobs.
BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
#: The URI schemes of Azure Blob Storage.
SCHEMES = ("az", "abfs", "abfss")
_PATH = f"@Resource[{BLOB}:path]"
_PREFIX = f"@Request[{BLOB}:prefix]"


@dataclass(frozen=True)
class Grant:
    """One role assignment of a function's identity.

    Attributes
    ----------
    scope
        What it is scoped to: ``("container", account, name)``, ``("queue", account, name)``.
    role
        The built-in role's name (``"Storage Blob Data Reader"``).
    condition
        The ABAC condition narrowing it, or ``None``.
    """

    scope: tuple[str, str, str]
    role: str
    condition: str | None = None


def is_azure(uri: str) -> bool:
    """Whether ``uri`` is a Blob Storage URI (``az://``, ``abfs://``, ``abfss://``)."""
    return uri.split("://", 1)[0] in SCHEMES


def split_uri(uri: str) -> tuple[str, str]:
    """``(container, path)`` of a Blob Storage URI of any of the three forms.

    Examples
    --------
    >>> split_uri("az://lake/raw/*.parquet")
    ('lake', 'raw/*.parquet')
    >>> split_uri("abfss://lake@acct.dfs.core.windows.net/raw/a.parquet")
    ('lake', 'raw/a.parquet')
    """
    rest = uri.split("://", 1)[1]
    head, _, path = rest.partition("/")
    return head.split("@", 1)[0], path


def _quote(text: str) -> str:
    return "'" + text.replace("'", "\\'") + "'"


def _like(path: str) -> str:
    # StringLike knows * and ?; a glob's [..] class becomes ?, so the grant covers it.
    out, i = [], 0
    while i < len(path):
        if path[i] == "[" and "]" in path[i:]:
            out.append("?")
            i = path.index("]", i) + 1
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def blob_condition(reads: list[str], prefixes: list[str], writes: list[str]) -> str:
    """The ABAC condition allowing exactly these blob paths of one container (paths without the container).

    Examples
    --------
    >>> print(blob_condition(["raw/a.parquet"], ["raw/a.parquet/"], []))  # doctest: +NORMALIZE_WHITESPACE
    ((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT SubOperationMatches{'Blob.List'}))
     OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike 'raw/a.parquet'))
    AND ((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND SubOperationMatches{'Blob.List'}))
     OR (@Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:prefix] StringStartsWith 'raw/a.parquet/'))
    """

    def anyof(attribute: str, operator: str, values: list[str]) -> str:
        return " OR ".join(f"{attribute} {operator} {_quote(v)}" for v in values) if values else "false"

    read, write = f"{BLOB}/read", f"{BLOB}/write"
    clauses = [
        f"((!(ActionMatches{{'{read}'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR ({anyof(_PATH, 'StringLike', [_like(r) for r in reads])}))",
        f"((!(ActionMatches{{'{read}'}} AND SubOperationMatches{{'Blob.List'}})) OR ({anyof(_PREFIX, 'StringStartsWith', prefixes)}))",
    ]
    if writes:
        clauses.append(f"((!(ActionMatches{{'{write}'}}) AND !(ActionMatches{{'{BLOB}/add/action'}})) OR ({anyof(_PATH, 'StringLike', writes)}))")
        clauses.append(f"(!(ActionMatches{{'{BLOB}/delete'}}))")
    return "\nAND ".join(clauses)


def data_grants(spec: FunctionSpec, account_of: dict[str, str]) -> list[Grant]:
    """The grants on the pipeline's containers for ``spec``'s steps, from :func:`~glacier.infra.access.function_access`.

    Parameters
    ----------
    spec
        The function.
    account_of
        Container -> the storage account holding it, for every container the function touches.
    """
    access: StepAccess = function_access(spec).only(SCHEMES)
    by_container: dict[tuple[str, str], dict[str, set[str]]] = {}

    def slot(uri: str) -> dict[str, set[str]]:
        container, _ = split_uri(uri)
        account = account_of[container]
        return by_container.setdefault((account, container), {"reads": set(), "lists": set(), "writes": set()})

    for uri in access.reads:
        slot(uri)["reads"].add(split_uri(uri)[1])
    for listing in access.lists:
        slot(listing.prefix)["lists"].add(split_uri(listing.prefix)[1])
    for uri in access.writes:
        slot(uri)["writes"].add(split_uri(uri)[1])
    grants = []
    for (account, container), paths in sorted(by_container.items()):
        role = "Storage Blob Data Contributor" if paths["writes"] else "Storage Blob Data Reader"
        condition = blob_condition(sorted(paths["reads"]), sorted(paths["lists"]), sorted(paths["writes"]))
        grants.append(Grant(("container", account, container), role, condition))
    return grants

