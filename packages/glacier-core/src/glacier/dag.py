"""The pipeline graph: steps joined by the buckets they share.

Step B depends on step A when one of B's sources is A's target. Building the graph,
ordering it and finding cycles are all linear in the number of steps and edges.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from glacier.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from glacier.bucket import Bucket
    from glacier.task import Task

__all__ = ["DAG", "TaskInstance"]


class TaskInstance:
    """One step of a pipeline: sources → task → target.

    Parameters
    ----------
    task
        The task to run.
    source
        The single source (for a one-source step).
    target
        Where the result is written.
    name
        The step's name, unique in its graph.
    sources
        The sources by the task's parameter names (a multi-source step).
    """

    def __init__(
        self,
        task: Task,
        source: Bucket | None,
        target: Bucket,
        name: str,
        sources: Mapping[str, Bucket] | None = None,
    ) -> None:
        if sources is None:
            if source is None:
                msg = f"Step {name!r} has no source"
                raise PipelineDefinitionError(msg)
            params = task.parameters
            sources = {params[0] if params else "df": source}
        self.task = task
        self.sources: dict[str, Bucket] = dict(sources)
        self.source: Bucket = source if source is not None else next(iter(self.sources.values()))
        self.target = target
        self.name = name
        self.dependencies: list[TaskInstance] = []
        self.dependents: list[TaskInstance] = []

    @property
    def single_source(self) -> bool:
        """Whether the task takes one source (passed as its one argument)."""
        return len(self.sources) == 1

    def __repr__(self) -> str:
        return f"TaskInstance(name={self.name!r}, source={self.source!r}, target={self.target!r})"


class DAG:
    """A directed acyclic graph of :class:`TaskInstance` objects.

    Parameters
    ----------
    instances
        The steps, in any order.

    Raises
    ------
    PipelineDefinitionError
        (a ``ValueError``) when two steps write the same bucket, a step reads its own
        target, or the steps form a cycle.

    Examples
    --------
    >>> dag = pipeline.build()                  # doctest: +SKIP
    >>> [step.name for step in dag.topological_sort()]   # doctest: +SKIP
    ['extract', 'transform', 'aggregate']
    """

    def __init__(self, instances: list[TaskInstance]) -> None:
        self.instances = list(instances)
        self._order: list[TaskInstance] | None = None
        self._build_dependencies()
        self._validate()

    def _build_dependencies(self) -> None:
        producer: dict[Bucket, TaskInstance] = {}
        for inst in self.instances:
            other = producer.setdefault(inst.target, inst)
            if other is not inst:
                msg = (
                    f"Steps {other.name!r} and {inst.name!r} both write to {inst.target.uri}.\n\n"
                    "Hint: give each step its own target bucket"
                )
                raise PipelineDefinitionError(msg)
        for inst in self.instances:
            inst.dependencies, inst.dependents = [], []
        for inst in self.instances:
            seen: set[int] = set()
            for bucket in inst.sources.values():
                dep = producer.get(bucket)
                if dep is not None and id(dep) not in seen:
                    seen.add(id(dep))
                    inst.dependencies.append(dep)
                    dep.dependents.append(inst)

    def _validate(self) -> None:
        order = self._kahn()
        if len(order) != len(self.instances):
            ordered = {id(i) for i in order}
            in_cycle = sorted(i.name for i in self.instances if id(i) not in ordered)
            msg = f"Pipeline contains a cycle (through steps {', '.join(in_cycle)})"
            raise PipelineDefinitionError(msg)
        self._order = order

    def _kahn(self) -> list[TaskInstance]:
        in_degree = {id(inst): len(inst.dependencies) for inst in self.instances}
        queue = deque(inst for inst in self.instances if in_degree[id(inst)] == 0)
        order: list[TaskInstance] = []
        while queue:
            inst = queue.popleft()
            order.append(inst)
            for nxt in inst.dependents:
                in_degree[id(nxt)] -= 1
                if in_degree[id(nxt)] == 0:
                    queue.append(nxt)
        return order

    def topological_sort(self) -> list[TaskInstance]:
        """The steps in an order where every step comes after the steps it reads from."""
        assert self._order is not None
        return list(self._order)

    def waves(self) -> list[list[TaskInstance]]:
        """The steps grouped into waves: each wave depends only on earlier waves.

        Steps in one wave are independent of each other and may run at the same time.
        """
        level: dict[int, int] = {}
        for inst in self.topological_sort():
            level[id(inst)] = 1 + max((level[id(d)] for d in inst.dependencies), default=-1)
        waves: list[list[TaskInstance]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for inst in self.topological_sort():
            waves[level[id(inst)]].append(inst)
        return waves

    def downstream(self, roots: list[TaskInstance]) -> list[TaskInstance]:
        """``roots`` and every step that reads, directly or not, from them, in order."""
        marked: set[int] = set()
        stack = list(roots)
        while stack:
            inst = stack.pop()
            if id(inst) not in marked:
                marked.add(id(inst))
                stack.extend(inst.dependents)
        return [inst for inst in self.topological_sort() if id(inst) in marked]

    def __getitem__(self, name: str) -> TaskInstance:
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise KeyError(name)

    def to_mermaid(self) -> str:
        """A Mermaid flowchart: each bucket once, each step with its executor type.

        Node ids are generated, so paths with slashes, dots and spaces are safe; labels
        are quoted and escaped.
        """
        lines = ["graph LR"]
        bucket_ids: dict[Bucket, str] = {}

        def bucket_node(bucket: Bucket) -> str:
            node = bucket_ids.get(bucket)
            if node is None:
                node = bucket_ids[bucket] = f"b{len(bucket_ids)}"
                lines.append(f'    {node}[("{_label(bucket.path or bucket.uri)}")]')
            return node

        for index, inst in enumerate(self.topological_sort()):
            task_id = f"t{index}"
            lines.append(f'    {task_id}["{_label(inst.name)}<br/>({_label(inst.task.executor.type)})"]')
            for param, bucket in inst.sources.items():
                edge = "-->" if inst.single_source else f'-- "{_label(param)}" -->'
                lines.append(f"    {bucket_node(bucket)} {edge} {task_id}")
            lines.append(f"    {task_id} --> {bucket_node(inst.target)}")
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.instances)

    def __repr__(self) -> str:
        return f"DAG(instances={len(self.instances)})"


_UNSAFE = re.compile(r'["<>#]')


def _label(text: str) -> str:
    # Mermaid entity codes keep quotes and angle brackets from ending the label.
    return _UNSAFE.sub(lambda m: {'"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;"}[m.group()], text)
