"""GcpConfig and CloudFunctionConfig: gen2 limits, each broken one named with its field and limit; analyze reports a task timeout above the function's."""

from __future__ import annotations

import pytest

from glacier import Pipeline, Provider
from glacier.config import CloudFunctionConfig, GcpConfig
from glacier_gcp.config import min_cpu_for
from glacier_gcp.executor import needs_token


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory": 64}, "memory=64 MB is outside Cloud Functions' limit of 128 to 32,768 MB"),
        ({"memory": 40_000}, "memory=40000 MB is outside Cloud Functions' limit of 128 to 32,768 MB"),
        ({"timeout": 3_601}, "timeout=3601 s is outside Cloud Functions' limit of 1 to 3,600 s"),
        ({"memory": 20_000, "cpu": 4}, "cpu=4 is too few for memory=20000 MB: Cloud Functions requires at least 6 CPUs"),
        ({"cpu": 3}, "cpu=3 is not a CPU count Cloud Functions offers"),
        ({"min_instances": 5, "max_instances": 2}, "min_instances=5 must be between 0 and max_instances=2"),
        ({"runtime": "python2"}, "runtime='python2' is not one of"),
    ],
    ids=["memory-low", "memory-high", "timeout", "cpu-for-memory", "cpu-step", "instances", "runtime"],
)
def test_a_broken_limit_names_the_field_and_the_limit(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="CloudFunctionConfig: " + message.replace("(", r"\(").replace(")", r"\)")):
        CloudFunctionConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("memory", "cpus"), [(128, 0.083), (1024, 0.5), (2048, 1.0), (8192, 2.0), (16_384, 4.0), (24_576, 6.0), (32_768, 8.0)])
def test_the_default_cpu_is_the_fewest_the_memory_requires(memory: int, cpus: float) -> None:
    assert min_cpu_for(memory) == cpus == CloudFunctionConfig(memory=memory).effective_cpu


def test_the_largest_function_is_accepted() -> None:
    config = CloudFunctionConfig(memory=32_768, cpu=8, timeout=3_600)
    assert (config.effective_cpu, config.python_version) == (8, "3.12")


def test_analyze_reports_a_task_timeout_above_the_functions(tmp_path) -> None:  # noqa: ANN001
    from glacier.config import LocalConfig

    gcp = Provider(config=GcpConfig(project="p"))
    fn = gcp.serverless(config=CloudFunctionConfig(timeout=60))
    local = Provider(config=LocalConfig(root=str(tmp_path)))
    import polars as pl

    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "l" / "in.parquet", mkdir=True)
    too_long = fn.task(name="too_long", timeout=120)(lambda df: df)
    way_too_long = fn.task(name="way_too_long", timeout=4_000)(lambda df: df)
    source = local.bucket(bucket="l", path="in.parquet")
    p = (
        Pipeline("limits").source(source).transform(too_long).to(local.bucket(bucket="l", path="a.parquet"))
        .transform(way_too_long).to(local.bucket(bucket="l", path="b.parquet"))
    )
    problems = p.run(mode="analyze").problems
    assert any("timeout=120s is over the function's CloudFunctionConfig(timeout=60)" in x for x in problems), problems
    assert any("timeout=4000s is over Cloud Functions' limit of 3,600 s" in x for x in problems), problems


@pytest.mark.parametrize(
    ("url", "token"),
    [("https://europe-west1-p.cloudfunctions.net/f", True), ("https://f-abc-ew.a.run.app", True), ("http://127.0.0.1:8080/f", False), ("http://localhost:1/f", False), ("http://10.0.0.1/f", True)],
)
def test_only_plain_http_on_loopback_goes_without_an_id_token(url: str, token: bool) -> None:
    assert needs_token(url) is token
