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
    from glacier.dag import DAG
    from glacier.infra.generate import FunctionSpec
    from glacier.pipeline import Pipeline

__all__ = [
    "Listing",
    "StepAccess",
    "step_access",
    "function_access",
    "listing_for_read",
    "ForeignAccess",
    "UnfederatedAccessWarning",
    "foreign_access",
    "identity_local",
    "access_local",
]

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



# -- across clouds --------------------------------------------------------------------


class UnfederatedAccessWarning(UserWarning):
    """A function touches a cloud its own cannot federate with, so nothing is granted there.

    Generation goes on: the function's identity gets no access to that cloud's buckets
    (no wider grant, and no long-lived secret), and the step is refused there at run time.
    The message names the function, both clouds and what to change.
    """


@dataclass(frozen=True)
class ForeignAccess:
    """What one function touches in the buckets of a cloud other than the one it runs on.

    The cloud that owns the buckets (:attr:`cloud`) grants it, to an identity it
    federates with the function's own (see ``docs/multicloud.md``, "Identities and
    federation"); the cloud that runs the function (:attr:`home`) tells the function
    how to obtain that identity's credentials at run time.

    Attributes
    ----------
    spec
        The function.
    home
        The provider that runs it (``"aws"``).
    cloud
        The provider whose buckets it touches (``"gcp"``).
    access
        Its :func:`function_access` restricted to :attr:`cloud`'s buckets.
    """

    spec: FunctionSpec
    home: str
    cloud: str
    access: StepAccess


def foreign_access(pipeline: Pipeline, dag: DAG) -> list[ForeignAccess]:
    """Every (function, foreign cloud) pair of the pipeline, sorted by function name and cloud.

    A bucket's cloud is :attr:`Bucket.cloud <glacier.bucket.Bucket.cloud>`; buckets on
    this machine (``"local"``) are not a cloud a function reaches, and are left out.

    Examples
    --------
    A pipeline on one cloud has none:

    >>> from glacier import Bucket, Pipeline, Provider
    >>> from glacier.config import LocalConfig
    >>> @Provider(config=LocalConfig(root="/")).local().task
    ... def clean(df):
    ...     return df
    >>> pipeline = Pipeline(name="etl").source(Bucket.from_uri("file:///lake/raw.parquet")).transform(clean)
    >>> pipeline = pipeline.to(Bucket.from_uri("file:///lake/out.parquet"))
    >>> foreign_access(pipeline, pipeline.build())
    []
    """
    from glacier.infra.generate import function_specs

    found = []
    for home, specs in sorted(function_specs(pipeline, dag).items()):
        for spec in sorted(specs.values(), key=lambda s: s.name):
            schemes: dict[str, set[str]] = {}
            for bucket in (*spec.sources, *spec.targets):
                if bucket.cloud not in (home, "local"):
                    schemes.setdefault(bucket.cloud, set()).add(bucket.scheme)
            for cloud, names in sorted(schemes.items()):
                found.append(ForeignAccess(spec, home, cloud, function_access(spec).only(names)))
    return found


def identity_local(spec: FunctionSpec) -> str:
    """The Terraform local by which the cloud running ``spec`` publishes its identity.

    Declared by the function's own provider when the function reaches another cloud;
    read by that cloud's generator to trust exactly this identity. Its value is an object
    whose keys depend on the home cloud (``docs/multicloud.md`` lists them).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> identity_local(SimpleNamespace(name="etl-clean"))
    'glacier_etl_clean_identity'
    """
    from glacier.infra.terraform import terraform_identifier

    return terraform_identifier(f"glacier_{spec.name}_identity".replace("-", "_"))


def access_local(spec: FunctionSpec, cloud: str) -> str:
    """The Terraform local by which ``cloud`` publishes how ``spec`` obtains its credentials there.

    Declared by the generator of the cloud that owns the buckets; read by the function's
    own provider to configure the function (never a secret: an audience, a role ARN,
    a credential configuration, or the name of a secret in the home cloud's store).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> access_local(SimpleNamespace(name="etl-clean"), "gcp")
    'glacier_etl_clean_on_gcp'
    """
    from glacier.infra.terraform import terraform_identifier

    return terraform_identifier(f"glacier_{spec.name}_on_{cloud}".replace("-", "_"))
