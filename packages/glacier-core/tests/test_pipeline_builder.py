"""The builder keeps the seed's API and its errors; tasks bind sources by parameter name."""

from __future__ import annotations

import pytest

from glacier import Bucket, Pipeline
from glacier.errors import PipelineDefinitionError
from glacier.plugins.executor import Executor


class _Inline(Executor):
    kind = "inline"


EXEC = _Inline(provider=None)  # type: ignore[arg-type]


@EXEC.task
def identity(df):  # noqa: ANN001, ANN201
    return df


@EXEC.task(name="joiner", retries=2, timeout=30, cache=True, memory=512)
def join(sales_df, customers_df):  # noqa: ANN001, ANN201
    return sales_df.join(customers_df, on="id")


def b(name: str) -> Bucket:
    return Bucket.from_uri(f"memory://builder/{name}.parquet")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(lambda: Pipeline("p").transform(identity), "Must call .source() before .transform()", id="transform-before-source"),
        pytest.param(lambda: Pipeline("p").to(b("x")), "Must call .transform() before .to()", id="to-before-transform"),
        pytest.param(lambda: Pipeline("p").source(b("a")).source(b("b")), "Pipeline already has a source for current step", id="second-source"),
        pytest.param(lambda: Pipeline("p").source(b("a")).transform(identity).to(b("x")).source(b("c")), "Pipeline already has a source for current step", id="source-after-to"),
        pytest.param(lambda: Pipeline("p").build(), "Pipeline has no steps", id="empty"),
        pytest.param(
            lambda: Pipeline("p").source(b("a")).transform(identity).build(),
            "Step 1 (transform 'identity') has no target. Use .to(bucket) after .transform()",
            id="no-target",
        ),
    ],
)
def test_misuse_raises_the_seeds_value_errors(build, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value)
    assert isinstance(info.value, PipelineDefinitionError)


def test_to_twice_on_one_transform_is_refused() -> None:
    p = Pipeline("p").source(b("a")).transform(identity).to(b("x"))
    p._current_source = None  # what a caller reaching past .to() would do
    with pytest.raises(ValueError, match="Transform already has a target"):
        p.to(b("y"))


def test_decorator_keeps_options_and_calls_through() -> None:
    assert join.name == "joiner"
    assert (join.retries, join.timeout, join.cache, join.config) == (2, 30, True, {"memory": 512})
    assert identity("frame") == "frame"
    assert identity.__doc__ is None and identity.parameters == ["df"]


def test_task_rejects_negative_retries_and_zero_timeout() -> None:
    with pytest.raises(ValueError, match="retries"):
        EXEC.task(retries=-1)(lambda df: df)
    with pytest.raises(ValueError, match="timeout"):
        EXEC.task(timeout=0)(lambda df: df)


def test_sources_bind_by_parameter_name() -> None:
    p = Pipeline("j").sources({"customers_df": b("c"), "sales_df": b("s")}).transform(join).to(b("out"))
    inst = p.build().topological_sort()[0]
    assert inst.sources == {"customers_df": b("c"), "sales_df": b("s")}


@pytest.mark.parametrize(
    ("keys", "fragment"),
    [
        pytest.param({"sales": "s", "customers_df": "c"}, "unknown keys ['sales']; missing ['sales_df']", id="wrong-name"),
        pytest.param({"sales_df": "s"}, "missing ['customers_df']", id="missing"),
    ],
)
def test_sources_keys_that_do_not_match_parameters_are_refused(keys: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        Pipeline("j").sources({k: b(v) for k, v in keys.items()}).transform(join)
    assert "task 'joiner'" in str(info.value)
    assert fragment in str(info.value)


def test_a_two_input_task_on_one_source_says_to_use_sources() -> None:
    with pytest.raises(ValueError, match=r"(?s)needs 2 inputs .*Hint: use \.sources"):
        Pipeline("j").source(b("s")).transform(join)


def test_transform_takes_only_tasks() -> None:
    with pytest.raises(ValueError, match="decorate the function with @executor.task"):
        Pipeline("p").source(b("a")).transform(lambda df: df)  # type: ignore[arg-type]


def test_the_same_task_may_run_in_several_steps_with_distinct_names() -> None:
    p = Pipeline("p").source(b("a")).transform(identity).to(b("x")).transform(identity).to(b("y"))
    assert [i.name for i in p.build().topological_sort()] == ["identity", "identity#2"]


def test_build_is_cached_until_the_pipeline_changes() -> None:
    p = Pipeline("p").source(b("a")).transform(identity).to(b("x"))
    assert p.build() is p.build()
    before = p.build()
    p.transform(identity).to(b("y"))
    assert p.build() is not before


def test_compose_joins_pipelines_that_share_buckets_in_any_order() -> None:
    sales = Pipeline("load_sales").source(b("sales")).transform(identity).to(b("sales_prepared"))
    customers = Pipeline("load_customers").source(b("customers")).transform(identity).to(b("customers_prepared"))
    joined = Pipeline("join").sources({"sales_df": b("sales_prepared"), "customers_df": b("customers_prepared")}).transform(join).to(b("joined"))
    report = Pipeline.compose(joined, sales, customers, name="report")
    dag = report.build()
    waves = [[i.name for i in wave] for wave in dag.waves()]
    assert waves == [["identity", "identity#2"], ["joiner"]]
    assert repr(report) == "Pipeline(name='report', steps=3)"


def test_unknown_mode_names_the_modes() -> None:
    p = Pipeline("p").source(b("a")).transform(identity).to(b("x"))
    with pytest.raises(ValueError, match="Unknown mode: fast"):
        p.run(mode="fast")


def test_sources_after_to_names_the_current_bucket_and_shows_how_to_join_several() -> None:
    p = Pipeline("p").source(b("a")).transform(identity).to(b("mid"))
    with pytest.raises(PipelineDefinitionError) as info:
        p.sources({"sales_df": b("mid"), "customers_df": b("c")})
    message = str(info.value)
    assert message.startswith("Pipeline already has a source for current step")
    assert "memory://builder/mid.parquet" in message and "'identity'" in message
    assert "\n\nHint: " in message and "Pipeline.compose" in message and ".sources({" in message


def test_a_second_source_names_the_first() -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        Pipeline("p").source(b("a")).source(b("b"))
    assert "memory://builder/a.parquet" in str(info.value) and ".transform(" in str(info.value)
