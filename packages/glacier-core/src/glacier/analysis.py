"""``mode="analyze"``: the plan of a pipeline, from metadata alone.

It reads no data: each source's schema comes from its parquet footer, and each
step's output schema from calling the task on an *empty* LazyFrame of that schema
and asking polars for the result's schema. The analysis lists the waves, where each
step runs, every cross-provider transfer and every limit the pipeline breaks (an
executor's own limits, through :meth:`glacier.plugins.executor.Executor.problems`), before
anything is deployed.

It also names the cost of crossing clouds. Every edge whose two ends are in different
clouds (a source bucket's cloud is not the cloud its step runs in, or a step's cloud is
not its target's: :attr:`glacier.bucket.Bucket.cloud`,
:attr:`glacier.dag.TaskInstance.cloud`) is a :class:`Crossing`, with its bytes taken
from the objects' metadata (a stat, or one listing for a glob: no data is read) and an
estimated egress charge: those bytes times the internet-egress price of the cloud the
data leaves (:func:`egress_price`). A target, or a source written by an earlier step, is
measured as it is now, i.e. as the last run left it; one that does not exist yet has no
size, and its charge is unknown rather than zero. A step that runs in one cloud while
most of its input bytes are in another gets a warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from glacier.errors import brief
from glacier.plugins.registry import EgressPrice
from glacier.task import call_task

if TYPE_CHECKING:
    import polars as pl

    from glacier.bucket import Bucket
    from glacier.dag import DAG, TaskInstance
    from glacier.pipeline import Pipeline

__all__ = ["Analysis", "Crossing", "EGRESS_PRICES", "GB", "StepPlan", "analyze", "egress_price"]

#: The unit of every price: one GB as the providers bill it, 2**30 bytes.
GB = 2**30

# The price of data leaving each of Glacier's own providers for the internet, which is
# what another cloud is, in USD per GB: the first paid tier of each provider's published
# rates. The figures are the providers' long-standing published list prices, written
# down on 2026-12-02 from what is well known of them: this machine has no internet
# access, so the pages below were NOT re-read that day. Check them before relying on a
# figure; a provider package (or you, in a plugin) can give its own through the
# glacier_egress_prices hook, which takes precedence over this table.
#
# - AWS, S3 and EC2 "Data Transfer OUT From Amazon S3/EC2 To Internet", first 10 TB a
#   month: $0.09/GB (us-east-1; the first 100 GB a month are free across services):
#   https://aws.amazon.com/s3/pricing/ (Data transfer) and
#   https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer
# - Google Cloud, Cloud Storage network egress / Premium Tier internet egress, 0-1 TiB a
#   month, worldwide destinations except China and Australia: $0.12/GiB:
#   https://cloud.google.com/storage/pricing#network-egress and
#   https://cloud.google.com/vpc/network-pricing
# - Azure, bandwidth "Data transfer out" over Microsoft's global network, from North
#   America or Europe, first paid tier (after the first 100 GB a month, up to 10 TB):
#   $0.087/GB: https://azure.microsoft.com/en-us/pricing/details/bandwidth/
_AS_OF = "2026-12-02"

#: Glacier's dated table of internet-egress prices (USD per GB), by provider name;
#: see the comment above it in the source for the tiers, pages and date.
EGRESS_PRICES: dict[str, EgressPrice] = {
    "local": EgressPrice("local", 0.0, "", _AS_OF, "this machine: no cloud bills data leaving it, and clouds do not charge for data coming in"),
    "aws": EgressPrice(
        "aws", 0.09, "https://aws.amazon.com/s3/pricing/ ; https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer", _AS_OF,
        "S3/EC2 data transfer out to the internet, first 10 TB a month, us-east-1 (first 100 GB a month free)",
    ),
    "gcp": EgressPrice(
        "gcp", 0.12, "https://cloud.google.com/storage/pricing#network-egress ; https://cloud.google.com/vpc/network-pricing", _AS_OF,
        "Cloud Storage / Premium Tier internet egress, 0-1 TiB a month, worldwide except China and Australia",
    ),
    "azure": EgressPrice(
        "azure", 0.087, "https://azure.microsoft.com/en-us/pricing/details/bandwidth/", _AS_OF,
        "data transfer out to the internet over Microsoft's network, from North America or Europe, first paid tier (first 100 GB a month free)",
    ),
}


def egress_price(provider: str) -> EgressPrice | None:
    """What data leaving ``provider`` for the internet costs, or ``None`` if unknown.

    A price an installed plugin contributes (hook ``glacier_egress_prices``) takes
    precedence over Glacier's own table, :data:`EGRESS_PRICES`.

    Examples
    --------
    >>> egress_price("aws").usd_per_gb
    0.09
    >>> egress_price("local").usd_per_gb
    0.0
    """
    from glacier.plugins.registry import egress_prices

    return egress_prices().get(provider) or EGRESS_PRICES.get(provider)


@dataclass
class Crossing:
    """One edge of the pipeline between two clouds, with its bytes and egress charge.

    Attributes
    ----------
    step
        The step at one end.
    direction
        ``"reads"`` (the bucket is a source of the step) or ``"writes"`` (its target).
    uri
        The bucket at the other end.
    from_cloud, to_cloud
        Where the data leaves and where it arrives (``"local"`` is this machine).
    bytes
        The bytes the edge carries per run, from the objects' metadata (a glob sums its
        matches); ``None`` when they cannot be known (nothing written there yet).
    objects
        How many objects those bytes are in.
    usd_per_gb
        The egress price of ``from_cloud`` (``None`` when no price is known).
    usd
        The estimated charge per run, ``bytes / GB * usd_per_gb`` (``None`` when
        either is unknown).
    note
        Why the bytes or the price are unknown, if they are.
    """

    step: str
    direction: str
    uri: str
    from_cloud: str
    to_cloud: str
    bytes: int | None
    objects: int
    usd_per_gb: float | None
    usd: float | None
    note: str = ""


@dataclass
class StepPlan:
    """What the analysis found for one step."""

    name: str
    wave: int
    executor: str
    provider: str
    sources: dict[str, str]
    target: str
    output_schema: dict[str, str] | None = None
    problems: list[str] = field(default_factory=list)
    #: Where the step runs in ``mode="cloud"`` (:attr:`glacier.dag.TaskInstance.cloud`).
    cloud: str = "local"


@dataclass
class Analysis:
    """A pipeline's plan: waves, steps with schemas, transfers, cross-cloud costs and problems.

    ``ok`` is false when any step has a problem (a schema that cannot be derived, a
    broken limit); :attr:`warnings` (a step far from its input) do not make it false.
    ``str(analysis)`` is a readable report and :meth:`to_dict` the same as JSON-ready
    data (``glacier analyze`` prints one or the other).
    """

    pipeline: str
    waves: list[list[str]]
    steps: dict[str, StepPlan]
    transfers: list[str]
    #: Every edge between two clouds, with its bytes and estimated egress charge.
    crossings: list[Crossing] = field(default_factory=list)
    #: Advice that does not stop the pipeline, e.g. a step far from most of its input.
    warnings: list[str] = field(default_factory=list)

    @property
    def egress_usd_per_run(self) -> float:
        """The estimated egress charge of one run: the sum over :attr:`crossings` whose charge is known."""
        return sum(c.usd for c in self.crossings if c.usd is not None)

    @property
    def egress_complete(self) -> bool:
        """Whether every crossing's charge is known (otherwise the total leaves some out)."""
        return all(c.usd is not None for c in self.crossings)

    @property
    def problems(self) -> list[str]:
        """Every problem found, each prefixed with its step."""
        return [f"{s.name}: {p}" for s in self.steps.values() for p in s.problems]

    @property
    def ok(self) -> bool:
        """Whether nothing stands in the way of running the pipeline."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The analysis as JSON-ready data: pipeline, ok, waves, steps, transfers, problems.

        Examples
        --------
        >>> plan = StepPlan(name="double", wave=1, executor="local", provider="local", sources={"df": "file:///raw.parquet"}, target="file:///out.parquet")
        >>> Analysis(pipeline="etl", waves=[["double"]], steps={"double": plan}, transfers=[]).to_dict()["steps"]["double"]["target"]
        'file:///out.parquet'
        """
        clouds = sorted({c.from_cloud for c in self.crossings})
        prices = {cloud: asdict(price) for cloud in clouds if (price := egress_price(cloud)) is not None}
        return {
            "pipeline": self.pipeline,
            "ok": self.ok,
            "waves": [list(wave) for wave in self.waves],
            "steps": {name: asdict(step) for name, step in self.steps.items()},
            "transfers": list(self.transfers),
            "crossings": [asdict(c) for c in self.crossings],
            "egress": {"usd_per_run": self.egress_usd_per_run, "complete": self.egress_complete, "prices": prices},
            "warnings": list(self.warnings),
            "problems": self.problems,
        }

    def __str__(self) -> str:
        lines = [f"Pipeline {self.pipeline!r}: {len(self.steps)} step(s) in {len(self.waves)} wave(s)"]
        for number, wave in enumerate(self.waves, 1):
            lines.append(f"wave {number}:")
            for name in wave:
                step = self.steps[name]
                schema = ", ".join(f"{c}: {t}" for c, t in (step.output_schema or {}).items()) or "unknown"
                lines.append(f"  {name} [{step.executor} on {step.provider}] -> {step.target}")
                lines.append(f"    output schema: {schema}")
        lines.append("cross-provider transfers: " + ("; ".join(self.transfers) if self.transfers else "none"))
        lines.extend(self._crossing_lines())
        if self.warnings:
            lines.append("warnings:")
            lines.extend(f"  - {w}" for w in self.warnings)
        lines.append("problems: " + ("none" if self.ok else ""))
        lines.extend(f"  - {p}" for p in self.problems)
        return "\n".join(lines)


    def _crossing_lines(self) -> list[str]:
        if not self.crossings:
            return ["cross-cloud edges: none"]
        dates = sorted({p.as_of for c in self.crossings if (p := egress_price(c.from_cloud)) is not None and p.as_of})
        lines = [f"cross-cloud edges (estimated internet egress per run; prices as of {', '.join(dates) or 'unknown'}):"]
        for c in self.crossings:
            size = f"{_size(c.bytes)} in {c.objects} object(s)" if c.bytes is not None else "size unknown"
            if c.usd is not None:
                cost = f"{_usd(c.usd)} at ${c.usd_per_gb:g}/GB ({_cloud_name(c.from_cloud)})"
            else:
                cost = "charge unknown"
            note = f" ({c.note})" if c.note else ""
            lines.append(f"  {c.step} {c.direction} {c.uri}: {_cloud_name(c.from_cloud)} -> {_cloud_name(c.to_cloud)}, {size}, {cost}{note}")
        unknown = sum(c.usd is None for c in self.crossings)
        left_out = f" ({unknown} edge(s) of unknown charge not counted)" if unknown else ""
        lines.append(f"egress per run: {_usd(self.egress_usd_per_run)}{left_out}")
        return lines


def analyze(pipeline: Pipeline, dag: DAG) -> Analysis:
    """Analyze ``pipeline`` without reading its data (see the module docs)."""
    schemas: dict[str, pl.Schema | None] = {}
    steps: dict[str, StepPlan] = {}
    transfers: list[str] = []
    for number, wave in enumerate(dag.waves()):
        for inst in wave:
            executor = inst.task.executor
            plan = StepPlan(
                name=inst.name,
                wave=number + 1,
                executor=executor.kind,
                provider=executor.provider.name if executor.provider is not None else "?",
                sources={param: bucket.uri for param, bucket in inst.sources.items()},
                target=inst.target.uri,
                cloud=inst.cloud,
            )
            plan.problems.extend(executor.problems(inst))
            for bucket in (*inst.sources.values(), inst.target):
                if bucket.provider_name != plan.provider:
                    transfers.append(f"{inst.name} ({plan.provider} {executor.kind}) {'reads' if bucket is not inst.target else 'writes'} {bucket.uri} ({bucket.provider_name})")
            output = _output_schema(inst, schemas, plan)
            schemas[inst.target.uri] = output
            if output is not None:
                plan.output_schema = {name: str(dtype) for name, dtype in output.items()}
            steps[inst.name] = plan
    waves = [[inst.name for inst in wave] for wave in dag.waves()]
    crossings, warnings = _crossings(dag)
    return Analysis(pipeline=pipeline.name, waves=waves, steps=steps, transfers=transfers, crossings=crossings, warnings=warnings)


def _crossings(dag: DAG) -> tuple[list[Crossing], list[str]]:
    """Every cross-cloud edge with its bytes and charge, and a warning per step far from its input."""
    measured: dict[str, tuple[int | None, int, str]] = {}

    def measure(bucket: Bucket) -> tuple[int | None, int, str]:
        if bucket.uri not in measured:
            try:
                sizes = bucket.storage.sizes(bucket.uri)
                measured[bucket.uri] = (sum(sizes.values()), len(sizes), "")
            except FileNotFoundError:
                measured[bucket.uri] = (None, 0, "nothing written there yet")
            except Exception as exc:
                measured[bucket.uri] = (None, 0, f"cannot read its size: {brief(exc)}")
        return measured[bucket.uri]

    def crossing(inst: TaskInstance, direction: str, bucket: Bucket, from_cloud: str, to_cloud: str) -> Crossing:
        size, objects, note = measure(bucket)
        price = egress_price(from_cloud)
        if price is None:
            note = "; ".join(filter(None, [note, f"no egress price known for {from_cloud!r}"]))
        rate = price.usd_per_gb if price is not None else None
        usd = size / GB * rate if size is not None and rate is not None else None
        return Crossing(inst.name, direction, bucket.uri, from_cloud, to_cloud, size, objects, rate, usd, note)

    found: list[Crossing] = []
    warnings: list[str] = []
    for inst in dag.topological_sort():
        here = inst.cloud
        inputs: dict[str, int] = {}
        for bucket in dict.fromkeys(inst.sources.values()):
            if bucket.cloud != here:
                found.append(crossing(inst, "reads", bucket, bucket.cloud, here))
            size = measure(bucket)[0]
            if size:
                inputs[bucket.cloud] = inputs.get(bucket.cloud, 0) + size
        if inst.target.cloud != here:
            found.append(crossing(inst, "writes", inst.target, here, inst.target.cloud))
        warning = _far_from_input(inst, inputs, measure(inst.target)[0])
        if warning:
            warnings.append(warning)
    return found, warnings


def _far_from_input(inst: TaskInstance, inputs: dict[str, int], target_bytes: int | None) -> str | None:
    """A warning when most of the step's input bytes are in a cloud other than its own."""
    if not inputs:
        return None
    here, total = inst.cloud, sum(inputs.values())
    best = max(sorted(inputs), key=lambda cloud: inputs[cloud])
    if best == here or inputs[best] <= inputs.get(here, 0):
        return None

    def egress(cloud: str) -> float | None:
        usd = 0.0
        for source, size in inputs.items():
            if source != cloud:
                price = egress_price(source)
                if price is None:
                    return None
                usd += size / GB * price.usd_per_gb
        if target_bytes is not None and inst.target.cloud != cloud:
            price = egress_price(cloud)
            if price is None:
                return None
            usd += target_bytes / GB * price.usd_per_gb
        return usd

    now, there = egress(here), egress(best)
    saving = f"; running it there would change the estimated egress from {_usd(now)} to {_usd(there)} per run" if now is not None and there is not None else ""
    where = "on this machine (provider.local())" if best == "local" else f"on {best} (an executor of a {best} provider)"
    return (
        f"step {inst.name!r} runs on {_cloud_name(here)} but {inputs[best] / total:.0%} of its input bytes "
        f"({_size(inputs[best])} of {_size(total)}) are on {_cloud_name(best)}: it could run {where}{saving}"
    )


def _cloud_name(cloud: str) -> str:
    return "this machine" if cloud == "local" else cloud


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _usd(usd: float) -> str:
    return f"${usd:.2f}" if usd >= 0.01 or usd == 0 else f"${usd:.6f}"


def _output_schema(inst: TaskInstance, schemas: dict[str, Any], plan: StepPlan) -> pl.Schema | None:
    import polars as pl

    frames = {}
    for param, bucket in inst.sources.items():
        if bucket.uri in schemas:
            schema = schemas[bucket.uri]
            if schema is None:
                return None  # an upstream problem was already reported
        else:
            try:
                schema = bucket.scan().collect_schema()  # the parquet footer only
            except Exception as exc:
                plan.problems.append(f"cannot read the schema of source {bucket.uri} ({brief(exc)})")
                return None
        frames[param] = pl.LazyFrame(schema=schema)
    try:
        result = call_task(inst.task.func, frames)
        if isinstance(result, pl.DataFrame):
            return result.schema
        if isinstance(result, pl.LazyFrame):
            return result.collect_schema()
        plan.problems.append(f"the task returns {type(result).__name__}, not a polars LazyFrame or DataFrame")
    except Exception as exc:
        plan.problems.append(f"the task does not fit its sources' schema ({brief(exc)})")
    return None
