"""The DAG: order respects every dependency, cycles are always found, graphs render."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glacier import DAG, Bucket, Pipeline, TaskInstance
from glacier.errors import PipelineDefinitionError
from glacier.plugins.executor import Executor


class _Inline(Executor):
    kind = "inline"


EXEC = _Inline(provider=None)  # type: ignore[arg-type]


@EXEC.task
def step(df):  # noqa: ANN001, ANN201
    return df


def bucket(i: int | str) -> Bucket:
    return Bucket.from_uri(f"memory://dag/{i}.parquet")


def instance(name: str, sources: list[int | str], target: int | str) -> TaskInstance:
    srcs = {f"in{k}": bucket(s) for k, s in enumerate(sources)}
    return TaskInstance(task=step, source=None, target=bucket(target), name=name, sources=srcs)


@st.composite
def random_dags(draw: st.DrawFn) -> list[TaskInstance]:
    """Steps 0..n-1; step i writes bucket i and reads raw inputs or buckets of lower steps."""
    n = draw(st.integers(min_value=1, max_value=40))
    steps = []
    for i in range(n):
        parents = draw(st.lists(st.integers(min_value=0, max_value=i - 1), max_size=3, unique=True)) if i else []
        sources: list[int | str] = list(parents) or [f"raw{i}"]
        steps.append(instance(f"s{i}", sources, i))
    return draw(st.permutations(steps))


@given(random_dags())
@settings(max_examples=200, deadline=None)
def test_random_dags_order_respects_every_dependency(steps: list[TaskInstance]) -> None:
    dag = DAG(steps)
    position = {inst.name: k for k, inst in enumerate(dag.topological_sort())}
    assert len(position) == len(steps)
    for inst in steps:
        for dep in inst.dependencies:
            assert position[dep.name] < position[inst.name]


@given(random_dags())
@settings(max_examples=100, deadline=None)
def test_waves_hold_only_independent_steps_after_their_dependencies(steps: list[TaskInstance]) -> None:
    dag = DAG(steps)
    wave_of = {inst.name: w for w, wave in enumerate(dag.waves()) for inst in wave}
    assert sorted(wave_of) == sorted(s.name for s in steps)
    for inst in steps:
        for dep in inst.dependencies:
            assert wave_of[dep.name] < wave_of[inst.name]


@given(random_dags(), st.data())
@settings(max_examples=200, deadline=None)
def test_a_back_edge_always_makes_a_cycle_that_is_found(steps: list[TaskInstance], data: st.DataObject) -> None:
    # Pick a step a and any step b at or below it; making a also read b's target
    # closes the loop a -> ... -> b -> a.
    dag = DAG(steps)
    a = data.draw(st.sampled_from(steps))
    b = data.draw(st.sampled_from(dag.downstream([a])))
    sources = [bk.path.removesuffix(".parquet") for bk in a.sources.values()] + [b.target.path.removesuffix(".parquet")]
    looped = instance(a.name, sources, a.target.path.removesuffix(".parquet"))
    with pytest.raises(ValueError, match="Pipeline contains a cycle"):
        DAG([s for s in steps if s is not a] + [looped])


def test_a_step_reading_its_own_target_is_a_cycle() -> None:
    with pytest.raises(PipelineDefinitionError, match="cycle"):
        DAG([instance("loop", [1], 1)])


def test_two_steps_writing_one_bucket_are_refused_with_both_names() -> None:
    with pytest.raises(ValueError, match="'a' and 'b' both write to memory://dag/t.parquet"):
        DAG([instance("a", ["x"], "t"), instance("b", ["y"], "t")])


def test_buckets_with_the_same_uri_are_one_node() -> None:
    first = instance("first", ["raw"], "mid")
    second = TaskInstance(task=step, source=Bucket.from_uri("memory://dag//mid.parquet"), target=bucket("out"), name="second")
    dag = DAG([second, first])
    assert [i.name for i in dag.topological_sort()] == ["first", "second"]
    assert second.dependencies == [first]


def test_downstream_includes_every_transitive_reader_in_order() -> None:
    a, b, c, d = instance("a", ["r"], 1), instance("b", [1], 2), instance("c", [2], 3), instance("d", ["q"], 4)
    dag = DAG([c, d, b, a])
    assert [i.name for i in dag.downstream([b])] == ["b", "c"]


def test_mermaid_has_one_node_per_bucket_and_escapes_odd_paths() -> None:
    odd = Bucket.from_uri('memory://lake/with space/"quoted" <x>.parquet')
    mid = bucket("mid")
    p = Pipeline(name="m").source(odd).transform(step).to(mid).transform(step).to(bucket("out"))
    text = p.visualize()
    assert text.splitlines()[0] == "graph LR"
    assert text.count("[(") == 3  # raw, mid, out: mid appears once although read and written
    assert "#quot;quoted#quot; #lt;x#gt;" in text
    assert 'with space' in text
    assert "(inline)" in text
    for line in text.splitlines()[1:]:
        node = line.split()[0].split("[")[0]
        assert node.isalnum()


def test_two_names_for_one_object_are_one_node() -> None:
    writer = instance("writer", ["raw"], "mid")
    reader = TaskInstance(task=step, source=Bucket.from_uri("memory://dag/x/../mid.parquet"), target=bucket("out"), name="reader")
    dag = DAG([reader, writer])
    assert [i.name for i in dag.topological_sort()] == ["writer", "reader"]
    assert reader.dependencies == [writer]


def test_two_steps_writing_one_object_under_two_names_are_refused() -> None:
    other = TaskInstance(task=step, source=bucket("y"), target=Bucket.from_uri("memory://dag/x/../t.parquet"), name="b")
    with pytest.raises(ValueError, match="'a' and 'b' both write to memory://dag/t.parquet"):
        DAG([instance("a", ["x"], "t"), other])


def glob_reader(name: str, pattern: str, target: str = "out") -> TaskInstance:
    return TaskInstance(task=step, source=Bucket.from_uri(f"memory://dag/{pattern}"), target=bucket(target), name=name)


def test_a_glob_source_depends_on_every_step_whose_target_it_matches() -> None:
    writers = [instance(f"w{i}", ["raw"], f"parts/p{i}") for i in range(3)]
    deeper = instance("deep", ["raw"], "parts/sub/p")
    other = instance("other", ["raw"], "elsewhere")
    reader = glob_reader("reader", "parts/*.parquet")
    dag = DAG([reader, other, deeper, *writers])
    assert sorted(d.name for d in reader.dependencies) == ["w0", "w1", "w2"]
    assert dag.topological_sort()[-1] is reader


def test_a_glob_source_matching_its_own_target_is_a_cycle_that_names_the_glob() -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        DAG([glob_reader("combine", "glob/*.parquet", target="glob/combined")])
    message = str(info.value)
    assert message.startswith("Pipeline contains a cycle (through steps combine)")
    assert "memory://dag/glob/*.parquet" in message and "memory://dag/glob/combined.parquet" in message
    assert "\n\nHint: " in message


def test_a_cycle_through_a_glob_and_a_plain_edge_is_found() -> None:
    # a reads parts/*.parquet and writes mid; b reads mid and writes parts/b.parquet
    a = glob_reader("a", "parts/*.parquet", target="mid")
    b = instance("b", ["mid"], "parts/b")
    with pytest.raises(PipelineDefinitionError, match=r"cycle \(through steps a, b\)[\s\S]*parts/\*\.parquet"):
        DAG([a, b])


def test_a_glob_target_is_refused() -> None:
    glob_target = TaskInstance(task=step, source=bucket("raw"), target=Bucket.from_uri("memory://dag/parts/*.parquet"), name="w")
    with pytest.raises(PipelineDefinitionError, match=r"Step 'w' writes to a glob, memory://dag/parts/\*\.parquet[\s\S]*Hint: "):
        DAG([glob_target])


def test_to_a_glob_is_refused_when_it_is_called() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"Step 'step' writes to a glob, memory://dag/parts/\?\.parquet"):
        Pipeline(name="g").source(bucket("raw")).transform(step).to(Bucket.from_uri("memory://dag/parts/?.parquet"))


# The objects of every pattern below, and which ones fsspec's glob (what Storage uses)
# and polars' scan_parquet (the data path) match: '*' and '?' stay inside one folder,
# '**' as a whole segment crosses folders (none included), a leading dot is matched.
GLOB_FILES = ["a.parquet", "b.parquet", ".h.parquet", "sub/c.parquet", "sub/deep/d.parquet", "ab.parquet", "a.csv"]


GLOB_CASES = [
    pytest.param("*.parquet", [".h.parquet", "a.parquet", "ab.parquet", "b.parquet"], id="star"),
    pytest.param("*/*.parquet", ["sub/c.parquet"], id="star-folder"),
    pytest.param("**/*.parquet", [".h.parquet", "a.parquet", "ab.parquet", "b.parquet", "sub/c.parquet", "sub/deep/d.parquet"], id="double-star"),
    pytest.param("sub/**/*.parquet", ["sub/c.parquet", "sub/deep/d.parquet"], id="double-star-inside"),
    pytest.param("?.parquet", ["a.parquet", "b.parquet"], id="question-mark"),
    pytest.param("[ab].parquet", ["a.parquet", "b.parquet"], id="class"),
    pytest.param("[!a].parquet", ["b.parquet"], id="negated-class"),
    pytest.param("a*", ["a.csv", "a.parquet", "ab.parquet"], id="prefix"),
]


@pytest.mark.parametrize(("pattern", "matched"), GLOB_CASES)
def test_glob_edges_match_what_storage_globs_would_read(pattern: str, matched: list[str]) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    base = f"/glob-semantics-{abs(hash(pattern))}"
    for name in GLOB_FILES:
        fs.pipe(f"{base}/{name}", b"x")
    try:
        found = sorted(p.removeprefix(f"{base}/") for p in fs.glob(f"{base}/{pattern}") if fs.isfile(p))
    finally:
        fs.rm(base, recursive=True)
    assert found == matched  # the table above is fsspec's behaviour
    writers = [TaskInstance(task=step, source=bucket("raw"), target=Bucket.from_uri(f"memory://dag/g/{n}"), name=n) for n in GLOB_FILES]
    reader = glob_reader("reader", f"g/{pattern}")
    DAG([reader, *writers])
    assert sorted(d.name for d in reader.dependencies) == matched


@pytest.mark.parametrize(("pattern", "matched"), GLOB_CASES)
def test_the_glob_table_is_what_polars_reads_too(tmp_path, pattern: str, matched: list[str]) -> None:  # noqa: ANN001
    import polars as pl

    for name in GLOB_FILES:  # every file is parquet, whatever its name
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame({"x": [1]}).write_parquet(tmp_path / name)
    read = pl.scan_parquet(f"{tmp_path}/{pattern}", include_file_paths="file").collect()["file"]
    assert sorted(f.removeprefix(f"{tmp_path}/") for f in read) == matched


def test_mermaid_labels_tell_apart_buckets_with_the_same_path() -> None:
    lake, archive = Bucket.from_uri("memory://lake/in.parquet"), Bucket.from_uri("memory://archive/in.parquet")
    deep = Bucket.from_uri("memory://lake/raw/day/out.parquet")
    p = Pipeline(name="m").source(lake).transform(step).to(deep)
    q = Pipeline(name="n").source(archive).transform(step).to(bucket("other"))
    text = Pipeline.compose(p, q, name="both").visualize()
    assert '[("lake/in.parquet")]' in text and '[("archive/in.parquet")]' in text
    assert '[("raw/day/out.parquet")]' in text  # unique already: the path alone
    assert '[("other.parquet")]' in text


def test_mermaid_labels_fall_back_to_the_uri_when_only_the_scheme_differs() -> None:
    a, b = Bucket.from_uri("memory://lake/in.parquet"), Bucket.from_uri("s3://lake/in.parquet")
    text = Pipeline.compose(
        Pipeline(name="m").source(a).transform(step).to(bucket("x")),
        Pipeline(name="n").source(b).transform(step).to(bucket("y")),
        name="both",
    ).visualize()
    assert '[("memory://lake/in.parquet")]' in text and '[("s3://lake/in.parquet")]' in text


def fan_in(n: int) -> Pipeline:
    """``n`` one-step pipelines as one graph: two edges per step."""
    return Pipeline.compose(*[Pipeline(name=f"p{i}").source(bucket(f"raw{i}")).transform(step).to(bucket(f"out{i}")) for i in range(n)], name="wide")


def test_a_graph_within_mermaids_limits_does_not_warn() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fan_in(250).visualize()  # 500 edges: at the limit


def test_a_graph_past_mermaids_edge_limit_warns() -> None:
    with pytest.warns(UserWarning, match=r"502 edges[\s\S]*500[\s\S]*maxEdges"):
        fan_in(251).visualize()


def test_a_graph_past_mermaids_text_limit_warns() -> None:
    long = "x" * 30_000
    p = Pipeline(name="t").source(bucket(f"a{long}")).transform(step).to(bucket(f"b{long}"))
    with pytest.warns(UserWarning, match=r"characters[\s\S]*50,000[\s\S]*maxTextSize"):
        p.visualize()


def test_glacier_graph_prints_the_size_warning(tmp_path, capsys) -> None:  # noqa: ANN001
    from glacier.cli import main

    file = tmp_path / "wide.py"
    file.write_text(
        "from glacier import Bucket, Pipeline\n"
        "from glacier.run.local import InProcessExecutor\n"
        "local = InProcessExecutor(None)\n"
        "@local.task\n"
        "def keep(df):\n    return df\n"
        "wide = Pipeline.compose(*[Pipeline(name=f'p{i}').source(Bucket.from_uri(f'memory://w/raw{i}.parquet'))"
        ".transform(keep).to(Bucket.from_uri(f'memory://w/out{i}.parquet')) for i in range(300)], name='wide')\n"
    )
    assert main(["graph", str(file)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("graph LR\n")
    assert "600 edges" in err and "maxEdges" in err
