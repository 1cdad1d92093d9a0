"""mode="local" end to end: real parquet through real polars, on local storage."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pytest
from local_buckets import path_of, read, write
from polars.testing import assert_frame_equal

from glacier import Pipeline, Provider, StepStatus
from glacier.config import LocalConfig
from glacier.errors import PipelineDefinitionError


# Module level, so that a worker process can import them by name.
def extract_fn(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.filter(pl.col("value").is_not_null())


def transform_fn(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


def aggregate_fn(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


def seed_etl(provider: Provider, executor_of: dict[str, str] | None = None) -> tuple[Pipeline, dict]:
    """The seed's three-step ETL; executor_of picks 'local' or 'serverless' per step."""
    executors = {"local": provider.local(), "serverless": provider.serverless()}
    pick = executor_of or {}
    b = {name: provider.bucket(bucket="data-lake", path=f"{name}.parquet") for name in ("raw", "step1", "step2", "output")}

    extract = executors[pick.get("extract", "local")].task(name="extract")(extract_fn)
    transform = executors[pick.get("transform", "local")].task(name="transform")(transform_fn)
    aggregate = executors[pick.get("aggregate", "local")].task(name="aggregate")(aggregate_fn)
    p = Pipeline(name="etl").source(b["raw"]).transform(extract).to(b["step1"]).transform(transform).to(b["step2"]).transform(aggregate).to(b["output"])
    return p, b


def expected_etl(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.filter(pl.col("value").is_not_null()).with_columns((pl.col("value") * 2).alias("doubled")).group_by("category").agg(pl.col("value").sum()).sort("category")


def test_seed_etl_gives_the_same_result_as_polars(provider: Provider, events: pl.DataFrame) -> None:
    p, b = seed_etl(provider)
    write(b["raw"], events)
    result = p.run(mode="local")
    assert result.ok, result.summary()
    assert_frame_equal(read(b["output"]), expected_etl(events))
    assert [s.status for s in result.steps.values()] == [StepStatus.SUCCEEDED] * 3
    assert result["extract"].rows == events["value"].is_not_null().sum()
    assert result["transform"].bytes == Path(path_of(b["step2"])).stat().st_size
    assert result["aggregate"].rows == 7
    assert all(s.seconds >= 0 and s.attempts == 1 for s in result.steps.values())


def test_steps_on_worker_processes_give_the_same_result(provider: Provider, events: pl.DataFrame) -> None:
    # tasks defined in this module are imported by reference in the worker process
    p, b = seed_etl(provider, {"transform": "serverless"})
    write(b["raw"], events)
    result = p.run(mode="local")
    assert result.ok, result.summary()
    assert result["transform"].executor == "process"
    assert_frame_equal(read(b["output"]), expected_etl(events))


def test_multi_source_step_gets_frames_by_parameter_name(provider: Provider) -> None:
    local = provider.local()
    sales = provider.bucket(bucket="d", path="sales.parquet")
    customers = provider.bucket(bucket="d", path="customers.parquet")
    joined = provider.bucket(bucket="d", path="joined.parquet")
    write(sales, pl.DataFrame({"customer": [1, 2, 1], "amount": [10, 20, 30]}))
    write(customers, pl.DataFrame({"customer": [1, 2], "name": ["ada", "bob"]}))

    @local.task
    def join(customers_df: pl.LazyFrame, sales_df: pl.LazyFrame) -> pl.LazyFrame:
        return sales_df.join(customers_df, on="customer").group_by("name").agg(pl.col("amount").sum()).sort("name")

    result = Pipeline("j").sources({"sales_df": sales, "customers_df": customers}).transform(join).to(joined).run()
    assert result.ok, result.summary()
    assert read(joined).to_dict(as_series=False) == {"name": ["ada", "bob"], "amount": [40, 20]}


def test_a_task_may_return_a_dataframe(provider: Provider) -> None:
    src, out = provider.bucket(bucket="d", path="a.parquet"), provider.bucket(bucket="d", path="b.parquet")
    write(src, pl.DataFrame({"x": [3, 1, 2]}))

    @provider.local().task
    def eager(df: pl.LazyFrame) -> pl.DataFrame:
        return df.sort("x").collect()

    result = Pipeline("e").source(src).transform(eager).to(out).run()
    assert result["eager"].rows == 3
    assert read(out)["x"].to_list() == [1, 2, 3]


def test_independent_steps_run_at_the_same_time(provider: Provider) -> None:
    # Each task waits for the other at a barrier: run one after the other, it times out.
    barrier = threading.Barrier(2, timeout=10)
    local = provider.local()
    src = provider.bucket(bucket="d", path="src.parquet")
    write(src, pl.DataFrame({"x": [1]}))

    @local.task
    def left(df: pl.LazyFrame) -> pl.LazyFrame:
        barrier.wait()
        return df

    @local.task
    def right(df: pl.LazyFrame) -> pl.LazyFrame:
        barrier.wait()
        return df

    a = Pipeline("a").source(src).transform(left).to(provider.bucket(bucket="d", path="l.parquet"))
    b = Pipeline("b").source(src).transform(right).to(provider.bucket(bucket="d", path="r.parquet"))
    result = Pipeline.compose(a, b, name="both").run(max_workers=2)
    assert result.ok, result.summary()


def test_composed_pipelines_run_as_one_graph(provider: Provider) -> None:
    local = provider.local()
    bk = {n: provider.bucket(bucket="d", path=f"{n}.parquet") for n in ("sales", "customers", "sales_prepared", "customers_prepared", "joined")}
    write(bk["sales"], pl.DataFrame({"id": [1, 2], "amount": [5.0, None]}))
    write(bk["customers"], pl.DataFrame({"id": [1, 2], "name": ["a", "b"]}))

    @local.task
    def load_sales(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.drop_nulls()

    @local.task
    def load_customers(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    @local.task
    def join_data(sales_df: pl.LazyFrame, customers_df: pl.LazyFrame) -> pl.LazyFrame:
        return sales_df.join(customers_df, on="id")

    join = Pipeline("join").sources({"sales_df": bk["sales_prepared"], "customers_df": bk["customers_prepared"]}).transform(join_data).to(bk["joined"])
    sales = Pipeline("load_sales").source(bk["sales"]).transform(load_sales).to(bk["sales_prepared"])
    customers = Pipeline("load_customers").source(bk["customers"]).transform(load_customers).to(bk["customers_prepared"])
    result = Pipeline.compose(join, sales, customers, name="report").run()
    assert list(result.steps) == ["load_sales", "load_customers", "join_data"]
    assert read(bk["joined"]).to_dict(as_series=False) == {"id": [1], "amount": [5.0], "name": ["a"]}


def test_memory_buckets_run_in_process() -> None:
    provider = Provider(config=LocalConfig(root="memory://"))
    src, out = provider.bucket(bucket="m", path="in.parquet"), provider.bucket(bucket="m", path="out.parquet")
    assert src.uri == "memory://m/in.parquet"
    with src.storage.fs.open(src.storage.path(src.uri), "wb") as f:
        pl.DataFrame({"x": [1, 2, 3]}).write_parquet(f)

    @provider.local().task
    def big(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.filter(pl.col("x") > 1)

    result = Pipeline("m").source(src).transform(big).to(out).run()
    assert result.ok, result.summary()
    assert out.scan().collect()["x"].to_list() == [2, 3]


def test_glob_sources_read_every_matching_file(provider: Provider) -> None:
    for i in range(3):
        write(provider.bucket(bucket="d", path=f"parts/p{i}.parquet"), pl.DataFrame({"x": [i]}))
    out = provider.bucket(bucket="d", path="all.parquet")

    @provider.local().task
    def total(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.select(pl.col("x").sum())

    result = Pipeline("g").source(provider.bucket(bucket="d", path="parts/*.parquet")).transform(total).to(out).run()
    assert result.ok, result.summary()
    assert read(out)["x"].to_list() == [3]


@pytest.mark.parametrize("mode", ["local", "cloud"])
def test_local_provider_runs_the_same_in_local_and_cloud_mode(provider: Provider, events: pl.DataFrame, mode: str) -> None:
    p, b = seed_etl(provider, {"extract": "serverless"})
    write(b["raw"], events)
    result = p.run(mode=mode)
    assert result.ok, result.summary()
    assert result.mode == mode
    assert_frame_equal(read(b["output"]), expected_etl(events))


def test_a_task_defined_inside_a_function_cannot_go_to_a_worker_and_says_why(provider: Provider) -> None:
    src, out = provider.bucket(bucket="d", path="a.parquet"), provider.bucket(bucket="d", path="b.parquet")
    write(src, pl.DataFrame({"x": [1]}))

    @provider.serverless().task
    def nested(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    result = Pipeline("n").source(src).transform(nested).to(out).run()
    assert "defined inside a function" in str(result["nested"].error)
    assert "define the task's function at module level" in str(result["nested"].error)


def test_a_reader_naming_its_source_another_way_waits_for_the_writer(provider: Provider) -> None:
    # mid.parquet and x/../mid.parquet are one object, so one node: the reader runs after
    # the writer. As two nodes, the reader ran first (and failed) or read last run's file.
    local = provider.local()
    raw = provider.bucket(bucket="d", path="raw.parquet")
    out = provider.bucket(bucket="d", path="out.parquet")

    @local.task
    def produce(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.with_columns(pl.col("x") * 10)

    @local.task
    def consume(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.with_columns(pl.col("x") + 1)

    writer = Pipeline("w").source(raw).transform(produce).to(provider.bucket(bucket="d", path="mid.parquet"))
    reader = Pipeline("r").source(provider.bucket(bucket="d", path="x/../mid.parquet")).transform(consume).to(out)
    both = Pipeline.compose(reader, writer, name="both")  # the reader is listed first
    seen = []
    for values in ([1, 2], [3, 4]):
        write(raw, pl.DataFrame({"x": values}))
        result = both.run(max_workers=1)
        seen.append((list(result.steps), result.ok, read(out)["x"].to_list() if out.exists() else None))
    # before the fix: consume ran first and failed, then read the first run's mid.parquet
    assert seen == [(["produce", "consume"], True, [11, 21]), (["produce", "consume"], True, [31, 41])]


def test_a_glob_source_matching_its_own_target_is_refused_instead_of_reading_it_back(provider: Provider) -> None:
    write(provider.bucket(bucket="d", path="glob/part.parquet"), pl.DataFrame({"x": [1, 2, 3, 4, 5]}))

    @provider.local().task
    def combine(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    p = Pipeline("g").source(provider.bucket(bucket="d", path="glob/*.parquet")).transform(combine).to(provider.bucket(bucket="d", path="glob/combined.parquet"))

    def attempt() -> object:
        try:
            return p.run()["combine"].rows
        except PipelineDefinitionError as err:
            return err

    outcomes = [attempt() for _ in range(3)]  # before the fix: 5, 10, 15 rows, growing every run
    assert all(isinstance(o, PipelineDefinitionError) for o in outcomes), outcomes
    message = str(outcomes[0])
    assert "Pipeline contains a cycle" in message and "combine" in message
    assert "glob" in message and "glob/*.parquet" in message and "glob/combined.parquet" in message
    assert not provider.bucket(bucket="d", path="glob/combined.parquet").exists()


def test_a_glob_source_runs_after_every_step_writing_a_match(provider: Provider) -> None:
    local = provider.local()
    raw = provider.bucket(bucket="d", path="raw.parquet")
    write(raw, pl.DataFrame({"x": [1, 2]}))

    @local.task
    def part(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    @local.task
    def total(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.select(pl.col("x").sum())

    out = provider.bucket(bucket="d", path="total.parquet")
    summing = Pipeline("sum").source(provider.bucket(bucket="d", path="parts/*.parquet")).transform(total).to(out)
    parts = [Pipeline(f"p{i}").source(raw).transform(part).to(provider.bucket(bucket="d", path=f"parts/p{i}.parquet")) for i in range(3)]
    result = Pipeline.compose(summing, *parts, name="all").run(max_workers=1)
    assert result.ok, result.summary()
    assert list(result.steps)[-1] == "total"
    assert read(out)["x"].to_list() == [9]


def test_the_docs_example_of_several_sources_mid_chain_runs(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    page = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text()
    found = re.search(r"<!-- example: several-sources-mid-chain -->\n```python\n(.*?)```", page, flags=re.DOTALL)
    assert found, "docs/concepts.md lost its several-sources-mid-chain example"
    (tmp_path / "orders_report.py").write_text(found.group(1))
    proc = subprocess.run([sys.executable, "orders_report.py"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    steps = [line.split()[0] for line in proc.stdout.splitlines() if line.split()[:1] in (["clean"], ["enrich"], ["summarize"])]
    assert steps == ["clean", "enrich", "summarize"]
    assert "[('ada', 10.0), ('bob', 20.0), ('cy', 5.0)]" in proc.stdout
