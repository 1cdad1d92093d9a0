"""``mode="analyze"``: the plan of a pipeline, from metadata alone.

It reads no data: each source's schema comes from its parquet footer, and each
step's output schema from calling the task on an *empty* LazyFrame of that schema
and asking polars for the result's schema. The analysis lists the waves, where each
step runs, every cross-provider transfer and every limit the pipeline breaks (an
executor's own limits, through :meth:`glacier.plugins.executor.Executor.problems`), before
anything is deployed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from glacier.errors import brief
from glacier.task import call_task

if TYPE_CHECKING:
    import polars as pl

    from glacier.dag import DAG, TaskInstance
    from glacier.pipeline import Pipeline

__all__ = ["Analysis", "StepPlan", "analyze"]


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


@dataclass
class Analysis:
    """A pipeline's plan: waves, steps with schemas, transfers and problems.

    ``ok`` is false when any step has a problem (a schema that cannot be derived, a
    broken limit). ``str(analysis)`` is a readable report and :meth:`to_dict` the same
    as JSON-ready data (``glacier analyze`` prints one or the other).
    """

    pipeline: str
    waves: list[list[str]]
    steps: dict[str, StepPlan]
    transfers: list[str]

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
        return {
            "pipeline": self.pipeline,
            "ok": self.ok,
            "waves": [list(wave) for wave in self.waves],
            "steps": {name: asdict(step) for name, step in self.steps.items()},
            "transfers": list(self.transfers),
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
        lines.append("problems: " + ("none" if self.ok else ""))
        lines.extend(f"  - {p}" for p in self.problems)
        return "\n".join(lines)


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
    return Analysis(pipeline=pipeline.name, waves=waves, steps=steps, transfers=transfers)


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
