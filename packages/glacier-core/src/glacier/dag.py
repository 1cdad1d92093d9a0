"""The pipeline graph: steps joined by the buckets they share.

Step B depends on step A when one of B's sources is A's target, compared by their
normalized URIs. A glob source (``parts/*.parquet``) depends on every step whose
target it matches, with the matching storage uses: ``*`` and ``?`` stay inside one
folder, ``[ab]`` and ``[!a]`` are character classes, and ``**`` as a whole segment
crosses any number of folders (fsspec's ``glob`` and polars' ``scan_parquet`` agree
on these). Building the graph, ordering it and finding cycles are linear in the
number of steps and edges, plus one scan of the targets for each distinct glob source.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict, deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from glacier.errors import PipelineDefinitionError
from glacier.plugins.storage import is_glob

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
    def cloud(self) -> str:
        """Where the step runs in ``mode="cloud"``: its executor's provider (``"aws"`` for
        Lambda), or ``"local"`` for an executor that runs on this machine (whatever
        provider made it: ``aws.local()`` runs here)."""
        executor = self.task.executor
        if executor.runs_here or executor.provider is None:
            return "local"
        return executor.provider.name

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
        (a ``ValueError``) when two steps write the same bucket, a step writes to a
        glob, a step reads its own target (directly or through a glob source), or the
        steps form a cycle.

    Examples
    --------
    With ``raw``, ``intermediate``, ``output``, ``extract`` and ``aggregate`` as in
    :class:`glacier.Pipeline`'s example:

    >>> from glacier import Pipeline
    >>> pipeline = Pipeline(name="etl").source(raw).transform(extract).to(intermediate)
    >>> dag = pipeline.transform(aggregate).to(output).build()
    >>> [step.name for step in dag.topological_sort()]
    ['extract', 'aggregate']
    """

    def __init__(self, instances: list[TaskInstance]) -> None:
        self.instances = list(instances)
        self._order: list[TaskInstance] | None = None
        self._build_dependencies()
        self._validate()

    def _build_dependencies(self) -> None:
        producer: dict[str, TaskInstance] = {}
        for inst in self.instances:
            if is_glob(inst.target.uri):
                msg = (
                    f"Step {inst.name!r} writes to a glob, {inst.target.uri}.\n\n"
                    "Hint: a target is one object; give .to() a path without * ? or [ "
                    "(a glob is for reading several objects as a source)"
                )
                raise PipelineDefinitionError(msg)
            other = producer.setdefault(inst.target.uri, inst)
            if other is not inst:
                msg = (
                    f"Steps {other.name!r} and {inst.name!r} both write to {inst.target.uri}.\n\n"
                    "Hint: give each step its own target bucket"
                )
                raise PipelineDefinitionError(msg)
        for inst in self.instances:
            inst.dependencies, inst.dependents = [], []
        # (writer, reader) -> the reader's glob source that made the edge, for errors
        self._glob_edges: dict[tuple[int, int], str] = {}
        matches: dict[str, list[TaskInstance]] = {}
        for inst in self.instances:
            seen: set[int] = set()
            for bucket in inst.sources.values():
                uri = bucket.uri
                if is_glob(uri):
                    if uri not in matches:
                        pattern = _glob_pattern(uri)
                        matches[uri] = [dep for target, dep in producer.items() if pattern.fullmatch(target)]
                    deps = matches[uri]
                    for writer in deps:
                        self._glob_edges.setdefault((id(writer), id(inst)), uri)
                else:
                    deps = [producer[uri]] if uri in producer else []
                for dep in deps:
                    if id(dep) not in seen:
                        seen.add(id(dep))
                        inst.dependencies.append(dep)
                        dep.dependents.append(inst)

    def _validate(self) -> None:
        order = self._kahn()
        if len(order) != len(self.instances):
            ordered = {id(i) for i in order}
            stuck = [i for i in self.instances if id(i) not in ordered]
            in_cycle = sorted(i.name for i in stuck)
            msg = f"Pipeline contains a cycle (through steps {', '.join(in_cycle)})"
            globs = self._glob_edges_on_cycles(stuck)
            if globs:
                msg += (
                    ": " + "; ".join(globs) + ".\n\n"
                    "Hint: a glob source reads every object it matches, the targets of steps included; "
                    "write those targets outside the glob (another folder), or narrow the glob"
                )
            raise PipelineDefinitionError(msg)
        self._order = order

    def _glob_edges_on_cycles(self, stuck: list[TaskInstance]) -> list[str]:
        """How each glob edge that lies on a cycle among ``stuck`` came about."""
        inside = {id(i) for i in stuck}
        found = []
        for writer in stuck:
            for reader in writer.dependents:
                glob = self._glob_edges.get((id(writer), id(reader)))
                if glob is None or id(reader) not in inside or not _reaches(reader, writer, inside):
                    continue
                whose = "its own target" if reader is writer else f"the target of step {writer.name!r}"
                found.append(f"the glob source {glob} of step {reader.name!r} matches {whose}, {writer.target.uri}")
        return found

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
        are quoted and escaped. A bucket is labelled with its path, lengthened by the
        bucket name (and then the folders above it) until no two buckets share a label.

        When the pipeline spans several clouds, each cloud is a subgraph (``this
        machine`` for ``"local"``) holding its steps (placed by where they run:
        :attr:`TaskInstance.cloud`) and its buckets (:attr:`Bucket.cloud`); an edge
        between two clouds is dotted and labelled ``from → to``. A pipeline on one
        cloud is drawn without subgraphs.

        Warns (``UserWarning``) when the graph is past Mermaid's default limits of
        500 edges or 50,000 characters, which a renderer then refuses to draw.
        """
        steps = self.topological_sort()
        labels = _bucket_labels([b for inst in steps for b in (*inst.sources.values(), inst.target)])
        # (cloud, line) for a node, (None, line) for an edge, in drawing order.
        items: list[tuple[str | None, str]] = []
        bucket_ids: dict[Bucket, str] = {}
        edges = 0

        def bucket_node(bucket: Bucket) -> str:
            node = bucket_ids.get(bucket)
            if node is None:
                node = bucket_ids[bucket] = f"b{len(bucket_ids)}"
                items.append((bucket.cloud, f'{node}[("{_label(labels[bucket])}")]'))
            return node

        def edge(start: str, end: str, label: str | None, clouds: tuple[str, str]) -> str:
            if clouds[0] != clouds[1]:
                crossing = f"{_cloud_name(clouds[0])} → {_cloud_name(clouds[1])}"
                text = crossing if label is None else f"{label}: {crossing}"
                return f'{start} -.->|"{_label(text)}"| {end}'
            return f"{start} --> {end}" if label is None else f'{start} -- "{_label(label)}" --> {end}'

        for index, inst in enumerate(steps):
            task_id = f"t{index}"
            items.append((inst.cloud, f'{task_id}["{_label(inst.name)}<br/>({_label(inst.task.executor.type)})"]'))
            for param, bucket in inst.sources.items():
                node = bucket_node(bucket)
                items.append((None, edge(node, task_id, None if inst.single_source else param, (bucket.cloud, inst.cloud))))
            node = bucket_node(inst.target)
            items.append((None, edge(task_id, node, None, (inst.cloud, inst.target.cloud))))
            edges += len(inst.sources) + 1
        lines = ["graph LR"]
        clouds = list(dict.fromkeys(cloud for cloud, _ in items if cloud is not None))
        if len(clouds) <= 1:
            lines.extend(f"    {line}" for _, line in items)
        else:
            for number, cloud in enumerate(clouds):
                lines.append(f'    subgraph c{number}["{_label(_cloud_name(cloud))}"]')
                lines.extend(f"        {line}" for where, line in items if where == cloud)
                lines.append("    end")
            lines.extend(f"    {line}" for where, line in items if where is None)
        text = "\n".join(lines)
        if edges > MERMAID_MAX_EDGES or len(text) > MERMAID_MAX_TEXT_SIZE:
            msg = (
                f"The pipeline's Mermaid graph has {edges} edges and {len(text):,} characters; Mermaid draws at most "
                f"{MERMAID_MAX_EDGES} edges and {MERMAID_MAX_TEXT_SIZE:,} characters by default and shows an error instead.\n\n"
                "Hint: raise maxEdges and maxTextSize in mermaid.initialize() where the graph is rendered "
                "(a %%{init}%% directive cannot change them), or draw a part of the pipeline"
            )
            warnings.warn(msg, UserWarning, stacklevel=2)
        return text

    def __len__(self) -> int:
        return len(self.instances)

    def __repr__(self) -> str:
        return f"DAG(instances={len(self.instances)})"


#: Mermaid's default ``maxEdges``: a larger flowchart is refused with "Too many edges".
MERMAID_MAX_EDGES = 500
#: Mermaid's default ``maxTextSize``: longer diagram text is refused.
MERMAID_MAX_TEXT_SIZE = 50_000

_UNSAFE = re.compile(r'["<>#]')


def _cloud_name(cloud: str) -> str:
    return "this machine" if cloud == "local" else cloud


def _label(text: str) -> str:
    # Mermaid entity codes keep quotes and angle brackets from ending the label.
    return _UNSAFE.sub(lambda m: {'"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;"}[m.group()], text)


def _reaches(start: TaskInstance, goal: TaskInstance, inside: set[int]) -> bool:
    """Whether ``goal`` is ``start`` or downstream of it, through steps in ``inside``."""
    stack, seen = [start], set()
    while stack:
        inst = stack.pop()
        if inst is goal:
            return True
        if id(inst) not in seen:
            seen.add(id(inst))
            stack.extend(d for d in inst.dependents if id(d) in inside)
    return False


def _glob_pattern(glob: str) -> re.Pattern[str]:
    """A regex for the URIs the glob ``glob`` matches, as storage globs match them.

    ``*`` and ``?`` do not cross ``/``; ``**`` as a whole segment matches any number of
    folders (none included); ``[...]`` is a class, ``[!...]`` its complement.
    """
    segments = glob.split("/")
    out = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
        else:
            out.append(_segment_pattern(segment) + ("" if last else "/"))
    return re.compile("".join(out))


def _segment_pattern(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        c = segment[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1 if segment[i : i + 1] in ("!", "^") else i
            j += 1 if segment[j : j + 1] == "]" else 0  # a ] first in the class is literal
            end = segment.find("]", j)
            if end < 0:  # no closing bracket: a literal [
                out.append(re.escape(c))
                continue
            body, i = segment[i:end], end + 1
            negate = body[:1] in ("!", "^")
            body = (body[1:] if negate else body).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def _bucket_labels(buckets: list[Bucket]) -> dict[Bucket, str]:
    """A label per bucket: its path, lengthened from the left until it is unique.

    ``lake/in.parquet`` and ``archive/in.parquet`` (path ``in.parquet`` in buckets
    ``lake`` and ``archive``) get those labels rather than ``in.parquet`` twice; a
    bucket whose every suffix is shared (the same place on two schemes) gets its URI.
    """
    segments: dict[Bucket, list[str]] = {}
    length: dict[Bucket, int | None] = {}
    for bucket in buckets:
        if bucket in segments:
            continue
        segments[bucket] = bucket.uri.split("://", 1)[-1].strip("/").split("/")
        path = [part for part in bucket.path.split("/") if part]
        length[bucket] = len(path) if path and len(path) <= len(segments[bucket]) else None

    def label(bucket: Bucket) -> str:
        n = length[bucket]
        return bucket.uri if n is None else "/".join(segments[bucket][-n:])

    while True:
        groups: dict[str, list[Bucket]] = defaultdict(list)
        for bucket in segments:
            groups[label(bucket)].append(bucket)
        longer = [b for group in groups.values() if len(group) > 1 for b in group if length[b] is not None]
        if not longer:
            return {bucket: label(bucket) for bucket in segments}
        for bucket in longer:
            n = length[bucket]
            assert n is not None
            length[bucket] = n + 1 if n < len(segments[bucket]) else None
