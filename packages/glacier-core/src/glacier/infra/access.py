"""The access model: what each step touches in storage, computed once for every provider's IAM.

A step (:func:`glacier.run.step.execute_step`) and the cache around it
(:mod:`glacier.run.cache`) touch, for each step:

- its **sources**: each source object is read (a ``HEAD`` and ranged ``GET`` of its
  footer and data; for a glob, every object the glob matches);
- the **prefixes it lists**: a glob source is listed under the folder before its first
  glob character, recursively (polars and fsspec list by folder); a plain key, and each
  target, only by fsspec's directory probe ``KEY/`` after a ``HEAD`` that found
  nothing (is it a directory?);
- its **target**: written, then read back (its footer to count rows, its metadata for
  the fingerprint);
- on a store without atomic uploads (:attr:`Storage.atomic_upload
  <glacier.plugins.storage.Storage.atomic_upload>`), the **temporary names** beside
  the target (:func:`~glacier.plugins.storage.temp_pattern`): written, renamed onto
  it and deleted, and listed to clean what a killed writer left;
- with ``cache=True``, its **cache record** (:func:`~glacier.plugins.storage.record_uri`)
  beside the target: read and written (through its own temporary name where the
  store needs one).

The names come from the same helpers the step uses, so a provider that renders its
permissions from :class:`StepAccess` grants exactly what the step code does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from glacier.plugins.storage import is_glob, record_uri, temp_pattern

if TYPE_CHECKING:
    from glacier.dag import TaskInstance
    from glacier.infra.generate import FunctionSpec

__all__ = ["Listing", "StepAccess", "step_access", "function_access", "listing_for_read"]

_GLOB_CHARS = "*?["


@dataclass(frozen=True, order=True)
class Listing:
    """One listing a step makes.

    Attributes
    ----------
    prefix
        The URI prefix listed (``"s3://lake/raw/"``, or the bucket's root ``"s3://lake/"``).
    deeper
        Whether keys below ``prefix`` may be listed as prefixes too (a recursive listing
        under a folder); otherwise exactly ``prefix`` is listed.
    """

    prefix: str
    deeper: bool


@dataclass(frozen=True)
class StepAccess:
    """What one step (or, as a union, one function's steps) touches in storage.

    Every entry is a URI, or a glob of URIs where the step reads a glob.

    Attributes
    ----------
    reads
        Objects read: the sources (as written: a glob stays a glob), the targets and
        the cache records.
    lists
        The listings the step makes.
    writes
        Objects written: the targets and, with ``cache=True``, their cache records.
    temporaries
        Globs of the temporary names written beside what is written (written, renamed
        and deleted); empty on stores whose single upload is atomic.
    """

    reads: frozenset[str] = frozenset()
    lists: frozenset[Listing] = frozenset()
    writes: frozenset[str] = frozenset()
    temporaries: frozenset[str] = frozenset()

    def __or__(self, other: StepAccess) -> StepAccess:
        return StepAccess(
            self.reads | other.reads,
            self.lists | other.lists,
            self.writes | other.writes,
            self.temporaries | other.temporaries,
        )

    def only(self, schemes: Iterable[str]) -> StepAccess:
        """The part of this access on URIs of ``schemes`` (``{"s3", "s3a"}``)."""
        keep = tuple(f"{scheme}://" for scheme in schemes)
        return StepAccess(
            frozenset(u for u in self.reads if u.startswith(keep)),
            frozenset(entry for entry in self.lists if entry.prefix.startswith(keep)),
            frozenset(u for u in self.writes if u.startswith(keep)),
            frozenset(u for u in self.temporaries if u.startswith(keep)),
        )


def listing_for_read(uri: str) -> Listing:
    """What reading the source ``uri`` may list (see the module docs).

    Examples
    --------
    >>> listing_for_read("s3://lake/raw/*.parquet")
    Listing(prefix='s3://lake/raw/', deeper=True)
    >>> listing_for_read("s3://lake/ref/customers.parquet")
    Listing(prefix='s3://lake/ref/customers.parquet/', deeper=False)
    """
    if not is_glob(uri):
        return Listing(f"{uri}/", deeper=False)
    scheme, _, path = uri.partition("://")
    bucket, _, key = path.partition("/")
    first = min(key.index(c) for c in _GLOB_CHARS if c in key) if is_glob(key) else 0
    folder = key[:first].rpartition("/")[0]
    return Listing(f"{scheme}://{bucket}/{folder + '/' if folder else ''}", deeper=True)


def step_access(step: TaskInstance) -> StepAccess:
    """What ``step`` touches in storage: its sources, listings, target, temporaries and record.

    Examples
    --------
    For a ``cache=True`` step from ``file:///lake/raw/*.parquet`` to ``file:///lake/out.parquet``:

    >>> from glacier import Bucket, Pipeline, Provider
    >>> from glacier.config import LocalConfig
    >>> @Provider(config=LocalConfig(root="/")).local().task(cache=True)
    ... def clean(df):
    ...     return df
    >>> pipeline = Pipeline(name="etl").source(Bucket.from_uri("file:///lake/raw/*.parquet")).transform(clean)
    >>> step = pipeline.to(Bucket.from_uri("file:///lake/out.parquet")).build().topological_sort()[0]
    >>> access = step_access(step)
    >>> sorted(access.writes)
    ['file:///lake/.out.parquet.glacier.json', 'file:///lake/out.parquet']
    >>> sorted(access.temporaries)
    ['file:///lake/..out.parquet.glacier.json.glacier-tmp-*', 'file:///lake/.out.parquet.glacier-tmp-*']
    """
    target = step.target.uri
    written = [target, *([record_uri(target)] if step.task.cache else [])]
    reads = {b.uri for b in step.sources.values()} | set(written)
    lists = {listing_for_read(b.uri) for b in step.sources.values()} | {Listing(f"{target}/", deeper=False)}
    temporaries: set[str] = set()
    if not step.target.storage.atomic_upload:
        temporaries = {temp_pattern(uri) for uri in written}
        # Storage.clean_debris globs the target's temporaries: fsspec lists the folder.
        lists.add(Listing(f"{target.rpartition('/')[0]}/", deeper=False))
    return StepAccess(frozenset(reads), frozenset(lists), frozenset(written), frozenset(temporaries))


def function_access(spec: FunctionSpec) -> StepAccess:
    """The union of :func:`step_access` over every step that runs ``spec``'s task."""
    access = StepAccess()
    for step in spec.steps:
        access |= step_access(step)
    return access

