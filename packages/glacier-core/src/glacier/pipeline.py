"""The pipeline builder: ``.source(bucket).transform(task).to(bucket)``, repeated.

Storage is explicit: every ``.to()`` is a place the data is written, and the next
``.transform()`` reads from it. Pipelines that share buckets compose into one graph
with :meth:`Pipeline.compose`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glacier.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from glacier.bucket import Bucket
    from glacier.dag import DAG
    from glacier.task import Task

__all__ = ["Pipeline", "TransformStep", "MODES"]

#: The ways a pipeline can run; see :meth:`Pipeline.run`.
MODES = ("local", "cloud", "analyze", "generate")


@dataclass
class TransformStep:
    """A step in the pipeline: sources → transform → target."""

    sources: dict[str, Bucket]
    task: Task
    target: Bucket | None = None
    multi: bool = False

    @property
    def source(self) -> Bucket:
        """The step's (first) source."""
        return next(iter(self.sources.values()))


class Pipeline:
    """Builder for composing Glacier pipelines.

    Pattern: source → transform → to → transform → to → ...

    Parameters
    ----------
    name
        The pipeline's name (run records and the CLI use it).
    description
        Free text.
    **config
        Pipeline settings, e.g. ``state_dir`` for run records.

    Examples
    --------
    The examples on this page use these names:

    >>> import polars as pl
    >>> from glacier import Pipeline, Provider
    >>> from glacier.config import LocalConfig
    >>> provider = Provider(config=LocalConfig(root=str(tmp)))
    >>> local = provider.local()
    >>> raw = provider.bucket(bucket="lake", path="raw.parquet")
    >>> intermediate = provider.bucket(bucket="lake", path="clean.parquet")
    >>> output = provider.bucket(bucket="lake", path="totals.parquet")
    >>> @local.task()
    ... def extract(df: pl.LazyFrame) -> pl.LazyFrame:
    ...     return df.filter(pl.col("value").is_not_null())
    >>> @local.task()
    ... def aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
    ...     return df.group_by("category").agg(pl.col("value").sum())

    With events in ``raw``, the whole chain runs:

    >>> (tmp / "lake").mkdir()
    >>> pl.DataFrame({"category": ["a", "b", "a"], "value": [1.0, None, 2.0]}).write_parquet(tmp / "lake" / "raw.parquet")
    >>> p = (
    ...     Pipeline(name="etl")
    ...     .source(raw)
    ...     .transform(extract)
    ...     .to(intermediate)
    ...     .transform(aggregate)
    ...     .to(output)
    ... )
    >>> p.run(mode="local").ok
    True
    >>> pl.read_parquet(tmp / "lake" / "totals.parquet").sort("category").rows()
    [('a', 3.0)]
    """

    def __init__(self, name: str, description: str | None = None, **config: Any) -> None:
        self.name = name
        self.description = description
        self.config = config
        self._steps: list[TransformStep] = []
        self._current_source: dict[str, Bucket] | None = None
        self._multi = False
        self._dag: DAG | None = None

    # -- building --------------------------------------------------------------------

    def source(self, bucket: Bucket) -> Pipeline:
        """Start the pipeline by reading from a storage resource.

        Examples
        --------
        >>> Pipeline(name="etl").source(raw).transform(extract).to(intermediate).steps[0].task.name
        'extract'
        """
        self._check_no_source(".source()")
        self._current_source = {"": bucket}
        self._multi = False
        return self

    def sources(self, buckets: Mapping[str, Bucket]) -> Pipeline:
        """Start a step that reads several sources; keys are the task's parameter names.

        Examples
        --------
        >>> sales = provider.bucket(bucket="lake", path="sales.parquet")
        >>> customers = provider.bucket(bucket="lake", path="customers.parquet")
        >>> @local.task()
        ... def join(sales_df: pl.LazyFrame, customers_df: pl.LazyFrame) -> pl.LazyFrame:
        ...     return sales_df.join(customers_df, on="customer_id")
        >>> step = Pipeline(name="join").sources({"sales_df": sales, "customers_df": customers}).transform(join).steps[0]
        >>> {name: bucket.path for name, bucket in step.sources.items()}
        {'sales_df': 'sales.parquet', 'customers_df': 'customers.parquet'}
        """
        self._check_no_source(".sources()")
        if not buckets:
            msg = ".sources() needs at least one bucket"
            raise PipelineDefinitionError(msg)
        self._current_source = dict(buckets)
        self._multi = True
        return self

    def _check_no_source(self, method: str) -> None:
        current = self._current_source
        if current is None:
            return
        what = "Pipeline already has a source for current step"
        names = ", ".join(b.uri for b in current.values())
        last = self._steps[-1] if self._steps else None
        if last is not None and last.target is not None and current == {"": last.target}:
            msg = (
                f"{what}: .to() after step {last.task.name!r} made {names} the source of the next step, "
                f"so {method} cannot start another one.\n\n"
                "Hint: call .transform() next to read it. To read several sources in the middle of a chain, "
                "start a second pipeline whose .sources({...}) names that bucket, and join the two "
                "with Pipeline.compose(first, second, name=...)"
            )
        else:
            msg = (
                f"{what}: {names}, so {method} cannot add another.\n\n"
                "Hint: call .transform() next; a step's sources are set once, by one .source(bucket) "
                "or one .sources({...}) with all of them"
            )
        raise PipelineDefinitionError(msg)

    def transform(self, task: Task) -> Pipeline:
        """Apply a transformation; it reads from the current source (set by ``.source()`` or the previous ``.to()``).

        Examples
        --------
        >>> [step.task.name for step in pipeline.transform(extract).steps]
        ['extract']
        """
        from glacier.task import Task

        if self._current_source is None:
            msg = "Must call .source() before .transform()"
            raise PipelineDefinitionError(msg)
        if not isinstance(task, Task):
            msg = (
                f".transform() takes a Task, got {type(task).__name__} {getattr(task, '__name__', task)!r}.\n\n"
                "Hint: decorate the function with @executor.task()"
            )
            raise PipelineDefinitionError(msg)
        sources = self._bind_sources(task, self._current_source)
        self._steps.append(TransformStep(sources=sources, task=task, multi=self._multi))
        self._current_source = None
        self._dag = None
        return self

    def to(self, bucket: Bucket) -> Pipeline:
        """Write the transform's output to storage; it becomes the next transform's source.

        Examples
        --------
        >>> pipeline.transform(extract).to(intermediate).steps[-1].target.uri == intermediate.uri
        True
        """
        if not self._steps:
            msg = "Must call .transform() before .to()"
            raise PipelineDefinitionError(msg)
        last_step = self._steps[-1]
        if last_step.target is not None:
            msg = "Transform already has a target"
            raise PipelineDefinitionError(msg)
        from glacier.plugins.storage import is_glob

        if is_glob(bucket.uri):
            msg = (
                f"Step {last_step.task.name!r} writes to a glob, {bucket.uri}.\n\n"
                "Hint: a target is one object; give .to() a path without * ? or [ "
                "(a glob is for reading several objects as a source)"
            )
            raise PipelineDefinitionError(msg)
        last_step.target = bucket
        self._current_source = {"": bucket}
        self._multi = False
        self._dag = None
        return self

    @staticmethod
    def _bind_sources(task: Task, current: dict[str, Bucket]) -> dict[str, Bucket]:
        if "" in current:  # one source: the task's first parameter takes it
            if not task.parameters:
                msg = f"Task {task.name!r} takes no parameters, so it cannot read a source.\n\nHint: define it as def {task.name}(df): ..."
                raise PipelineDefinitionError(msg)
            if len(task.required_parameters) > 1:
                msg = (
                    f"Task {task.name!r} needs {len(task.required_parameters)} inputs "
                    f"({', '.join(task.required_parameters)}) but the step has one source.\n\n"
                    'Hint: use .sources({"name": bucket, ...}) with the task\'s parameter names'
                )
                raise PipelineDefinitionError(msg)
            return {task.parameters[0]: current[""]}
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in task.signature.parameters.values())
        unknown = [k for k in current if k not in task.parameters and not accepts_any]
        missing = [p for p in task.required_parameters if p not in current]
        if unknown or missing:
            msg = (
                f".sources() keys do not match the parameters of task {task.name!r}: "
                f"keys {sorted(current)}, parameters {task.parameters}"
                + (f"; unknown keys {unknown}" if unknown else "")
                + (f"; missing {missing}" if missing else "")
                + ".\n\nHint: the keys of .sources() must be the task's parameter names"
            )
            raise PipelineDefinitionError(msg)
        return current

    @classmethod
    def compose(cls, *pipelines: Pipeline, name: str, description: str | None = None) -> Pipeline:
        """One pipeline made of several that share buckets, as one graph.

        A step that reads a bucket another pipeline writes runs after it; independent
        steps run concurrently. The order of the arguments does not matter.

        Examples
        --------
        Two pipelines that meet at ``intermediate``, given in either order:

        >>> cleaning = Pipeline(name="clean").source(raw).transform(extract).to(intermediate)
        >>> totals = Pipeline(name="totals").source(intermediate).transform(aggregate).to(output)
        >>> report = Pipeline.compose(totals, cleaning, name="report")
        >>> [step.name for step in report.build().topological_sort()]
        ['extract', 'aggregate']
        >>> report.run().ok
        True
        """
        composed = cls(name=name, description=description)
        for pipeline in pipelines:
            composed._steps.extend(pipeline._steps)
            for key, value in pipeline.config.items():
                composed.config.setdefault(key, value)
        return composed

    @property
    def steps(self) -> list[TransformStep]:
        """The steps added so far, in the order they were written."""
        return list(self._steps)

    # -- graph -----------------------------------------------------------------------

    def build(self) -> DAG:
        """Build (once) the DAG from the pipeline's steps.

        Raises
        ------
        PipelineDefinitionError
            (a ``ValueError``) for an empty pipeline, a transform with no target, two
            steps writing one bucket, or a cycle.
        """
        if self._dag is not None:
            return self._dag
        from glacier.dag import DAG, TaskInstance

        if not self._steps:
            msg = "Pipeline has no steps"
            raise PipelineDefinitionError(msg)
        for i, step in enumerate(self._steps):
            if step.target is None:
                msg = f"Step {i + 1} (transform '{step.task.name}') has no target. Use .to(bucket) after .transform()"
                raise PipelineDefinitionError(msg)
        uses: dict[str, int] = {}
        instances = []
        for step in self._steps:
            assert step.target is not None
            # The same task may run in several steps; each step needs its own name.
            uses[step.task.name] = count = uses.get(step.task.name, 0) + 1
            name = step.task.name if count == 1 else f"{step.task.name}#{count}"
            instances.append(TaskInstance(task=step.task, source=None, target=step.target, name=name, sources=step.sources))
        self._dag = DAG(instances)
        return self._dag

    # -- running -----------------------------------------------------------------------

    def run(self, mode: str = "local", **kwargs: Any) -> Any:
        """Execute, analyze or generate the pipeline.

        Parameters
        ----------
        mode :
            ``"local"``: every step runs on this machine (independent steps at once);
            ``"cloud"``: each step runs where its executor says;
            ``"analyze"``: a plan with schemas and limits, touching only metadata;
            ``"generate"``: Terraform for every provider the pipeline uses.
        **kwargs
            Passed to the mode (e.g. ``max_workers``, ``resume``, ``out``).

        Returns
        -------
        RunResult for ``local`` and ``cloud``; the analysis or the generated files otherwise.
        While a task's module is being imported to run a step (a worker process, a
        deployed function), a script's module-level ``run()`` does not run: it prints one
        line to standard error naming the module and returns a result whose steps are all
        ``skipped`` (``ok`` is true: nothing failed), or ``None`` for ``analyze`` and
        ``generate``.

        Raises
        ------
        GlacierError
            In a process that executes a step (``GLACIER_STEP_PROCESS`` is set), for
            instance from inside a task: a step never starts a run.
        """
        from glacier._guard import check_run, skipped_run

        importing = check_run(self.name)
        if importing is not None:
            return skipped_run(self, mode, importing) if mode in ("local", "cloud") else None
        dag = self.build()
        if mode in ("local", "cloud"):
            from glacier.run.runner import Runner

            return Runner(self, dag, mode=mode, **kwargs).run()
        if mode == "analyze":
            from glacier.analysis import analyze

            return analyze(self, dag, **kwargs)
        if mode == "generate":
            from glacier.infra.generate import generate

            return generate(self, dag, **kwargs)
        msg = f"Unknown mode: {mode}\n\nHint: use one of {', '.join(MODES)}"
        raise ValueError(msg)

    def visualize(self) -> str:
        """The pipeline as a Mermaid flowchart (text).

        A pipeline that spans several clouds gets one subgraph per cloud, with the
        edges between clouds dotted and labelled (see :meth:`glacier.dag.DAG.to_mermaid`).

        Examples
        --------
        >>> from glacier import Pipeline, Provider
        >>> from glacier.config import LocalConfig
        >>> here = Provider(config=LocalConfig(root="/tmp/glacier-doc"))
        >>> @here.local().task
        ... def extract(df):
        ...     return df
        >>> p = Pipeline(name="etl").source(here.bucket(bucket="raw", path="data.parquet")).transform(extract)
        >>> print(p.to(here.bucket(bucket="out", path="data.parquet")).visualize())
        graph LR
            t0["extract<br/>(local)"]
            b0[("raw/data.parquet")]
            b0 --> t0
            b1[("out/data.parquet")]
            t0 --> b1
        """
        return self.build().to_mermaid()

    def __repr__(self) -> str:
        return f"Pipeline(name='{self.name}', steps={len(self._steps)})"
