"""One pipeline over several clouds: visualize's subgraphs, analyze's cost of crossing, generate's one root.

The clouds are this machine (file://), AWS (S3 in moto's server on 127.0.0.1) and
"fakecloud", a test-only plugin (tests/fake_cloud.py) standing in for a second provider
package, with real objects in fsspec's memory filesystem.
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import fake_cloud
from glacier import Pipeline, Provider
from glacier.analysis import GB, egress_price

@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server on 127.0.0.1, with fake AWS keys set for this module's tests only."""
    from glacier_aws.testing.moto_server import moto_server

    with moto_server(log_dir=tmp_path_factory.mktemp("moto")) as server, pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield server.endpoint


@pytest.fixture
def fake() -> Iterator[None]:
    with fake_cloud.registered():
        yield


@pytest.fixture
def aws(moto_endpoint: str) -> Provider:
    from glacier.config import AwsConfig

    return Provider(config=AwsConfig(region="us-east-1", endpoint_url=moto_endpoint))


@pytest.fixture
def lake(aws: Provider) -> str:
    import boto3

    name = f"glacier-multi-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=aws.config.endpoint_url, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def keep(df: pl.LazyFrame) -> pl.LazyFrame:
    return df


def join(left: pl.LazyFrame, right: pl.LazyFrame) -> pl.LazyFrame:
    return left.join(right, on="id")


def s3_size(aws: Provider, bucket: str, prefix: str) -> int:
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws.config.endpoint_url, region_name="us-east-1")
    return sum(o["Size"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])


def frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({"id": list(range(n)), "v": [float(i) for i in range(n)]})


# -- visualize -------------------------------------------------------------------------


def subgraphs(text: str) -> dict[str, set[str]]:
    """Subgraph label -> the node ids declared inside it."""
    found: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        if m := re.match(r'\s*subgraph c\d+\["(.+)"\]', line):
            current = found.setdefault(m.group(1), set())
        elif line.strip() == "end":
            current = None
        elif current is not None:
            current.add(re.match(r"\s*(\w+)", line).group(1))  # type: ignore[union-attr]
    return found


def test_visualize_draws_one_subgraph_per_cloud_and_marks_the_edges_between_them(fake: None, tmp_path: Path) -> None:
    from glacier.config import AwsConfig, LambdaConfig, LocalConfig

    aws = Provider(config=AwsConfig(region="us-east-1"))
    here = Provider(config=LocalConfig(root=str(tmp_path)))
    other = Provider(config=fake_cloud.FakeCloudConfig())
    clean = aws.serverless(config=LambdaConfig()).task(name="clean")(keep)
    joined = other.serverless().task(name="joined")(join)
    report = aws.local().task(name="report")(keep)  # an AWS provider's local executor runs here
    raw, stage = aws.bucket(bucket="lake", path="raw.parquet"), aws.bucket(bucket="lake", path="stage.parquet")
    ref, mid = here.bucket(bucket="ref", path="ids.parquet"), other.bucket(bucket="stage", path="joined.parquet")
    out = here.bucket(bucket="out", path="report.parquet")
    p = Pipeline.compose(
        Pipeline("a").source(raw).transform(clean).to(stage),
        Pipeline("b").sources({"left": stage, "right": ref}).transform(joined).to(mid).transform(report).to(out),
        name="multi",
    )
    text = p.visualize()
    assert subgraphs(text) == {"aws": {"t0", "b0", "b1"}, "fakecloud": {"t1", "b3"}, "this machine": {"b2", "t2", "b4"}}
    edges = [line.strip() for line in text.splitlines() if "--" in line or "-.-" in line]
    assert edges == [
        "b0 --> t0",
        "t0 --> b1",
        'b1 -.->|"left: aws → fakecloud"| t1',
        'b2 -.->|"right: this machine → fakecloud"| t1',
        "t1 --> b3",
        'b3 -.->|"fakecloud → this machine"| t2',
        "t2 --> b4",
    ]


def test_a_pipeline_on_one_cloud_is_drawn_without_subgraphs(provider: Provider) -> None:
    p = Pipeline("one").source(provider.bucket(bucket="a", path="in.parquet")).transform(provider.local().task(keep)).to(provider.bucket(bucket="a", path="out.parquet"))
    assert "subgraph" not in p.visualize() and "-.->" not in p.visualize()


# -- analyze: the cost of crossing clouds ----------------------------------------------------


def test_analyze_prices_every_cross_cloud_edge_from_object_metadata(fake: None, aws: Provider, lake: str, tmp_path: Path) -> None:
    from glacier.config import LambdaConfig, LocalConfig

    here = Provider(config=LocalConfig(root=str(tmp_path)))
    other = Provider(config=fake_cloud.FakeCloudConfig())
    for i, n in enumerate((300, 500)):
        aws.bucket(bucket=lake, path=f"raw/part-{i}.parquet").storage.write(frame(n), f"s3://{lake}/raw/part-{i}.parquet")
    raw = aws.bucket(bucket=lake, path="raw/*.parquet")
    stage = other.bucket(bucket="stage", path=f"{lake}/clean.parquet")  # as the last run left it
    stage.storage.write(frame(200), stage.uri)
    ref = here.bucket(bucket="ref", path="ids.parquet")
    ref.storage.write(frame(20_000), ref.uri)
    mid = other.bucket(bucket="stage", path=f"{lake}/joined.parquet")  # not written yet
    clean = aws.serverless(config=LambdaConfig()).task(name="clean")(keep)
    audit = here.local().task(name="audit")(keep)
    joined = other.serverless().task(name="joined")(join)
    report = here.local().task(name="report")(keep)
    p = Pipeline.compose(
        Pipeline("a").source(raw).transform(clean).to(stage),
        Pipeline("b").source(raw).transform(audit).to(here.bucket(bucket="out", path="audit.parquet")),
        Pipeline("c").sources({"left": stage, "right": ref}).transform(joined).to(mid).transform(report).to(here.bucket(bucket="out", path="report.parquet")),
        name="multi",
    )
    analysis = p.run(mode="analyze")

    raw_bytes = s3_size(aws, lake, "raw/")
    stage_bytes = stage.storage.fs.info(stage.storage.path(stage.uri))["size"]
    ref_bytes = os.path.getsize(ref.uri.removeprefix("file://"))
    got = {(c.step, c.direction): c for c in analysis.crossings}
    assert sorted(got) == [("audit", "reads"), ("clean", "writes"), ("joined", "reads"), ("report", "reads")]
    assert (got["audit", "reads"].from_cloud, got["audit", "reads"].to_cloud) == ("aws", "local")
    assert (got["audit", "reads"].bytes, got["audit", "reads"].objects) == (raw_bytes, 2)  # the glob's matches, summed
    assert got["audit", "reads"].usd == pytest.approx(raw_bytes / GB * 0.09)
    assert (got["clean", "writes"].from_cloud, got["clean", "writes"].bytes) == ("aws", stage_bytes)
    assert got["joined", "reads"].uri == ref.uri and got["joined", "reads"].usd == 0.0  # leaving this machine is free
    assert got["report", "reads"].bytes is None and got["report", "reads"].usd is None  # nothing there yet
    assert "nothing written there yet" in got["report", "reads"].note
    assert analysis.egress_usd_per_run == pytest.approx((raw_bytes + stage_bytes) / GB * 0.09)
    assert not analysis.egress_complete

    # audit reads only S3 from this machine; joined runs on fakecloud, but the 20,000-row
    # reference on this machine is most of its input; clean reads at home: no warning
    audit_warning, joined_warning = analysis.warnings
    assert audit_warning.startswith("step 'audit' runs on this machine but 100% of its input bytes")
    assert "are on aws: it could run on aws" in audit_warning
    assert joined_warning.startswith("step 'joined' runs on fakecloud but ")
    assert "are on this machine: it could run on this machine" in joined_warning
    assert ref_bytes > stage_bytes

    text = str(analysis)
    assert "cross-cloud edges (estimated internet egress per run; prices as of 2026-12-02):" in text
    assert f"audit reads s3://{lake}/raw/*.parquet: aws -> this machine" in text and "in 2 object(s)" in text
    assert "egress per run: $" in text and "(1 edge(s) of unknown charge not counted)" in text
    assert "warnings:\n  - step 'audit'" in text

    data = json.loads(json.dumps(analysis.to_dict()))
    assert data["egress"]["usd_per_run"] == pytest.approx(analysis.egress_usd_per_run)
    assert data["egress"]["prices"]["aws"]["source"].startswith("https://aws.amazon.com/")
    assert {c["step"] for c in data["crossings"]} == {"audit", "clean", "joined", "report"}
    assert data["warnings"] == analysis.warnings
    assert analysis.ok, analysis.problems  # a warning is not a problem


def test_a_plugins_egress_price_is_used_for_data_leaving_its_cloud(fake: None, tmp_path: Path) -> None:
    from glacier.config import LocalConfig

    here = Provider(config=LocalConfig(root=str(tmp_path)))
    other = Provider(config=fake_cloud.FakeCloudConfig())
    src = other.bucket(bucket="priced", path="in.parquet")
    src.storage.write(frame(1000), src.uri)
    p = Pipeline("p").source(src).transform(here.local().task(keep)).to(here.bucket(bucket="o", path="out.parquet"))
    (crossing,) = p.run(mode="analyze").crossings
    assert egress_price("fakecloud").usd_per_gb == fake_cloud.USD_PER_GB  # type: ignore[union-attr]
    assert crossing.usd_per_gb == fake_cloud.USD_PER_GB
    assert crossing.usd == pytest.approx(crossing.bytes / GB * fake_cloud.USD_PER_GB)  # type: ignore[operator]


def test_glacier_analyze_json_names_the_egress_of_reading_s3_from_this_machine(aws: Provider, lake: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from glacier.cli import main

    src = aws.bucket(bucket=lake, path="raw.parquet")
    src.storage.write(frame(5000), src.uri)
    file = tmp_path / "here_and_s3.py"
    file.write_text(textwrap.dedent(f"""
        from glacier import Pipeline, Provider
        from glacier.config import AwsConfig, LocalConfig
        aws = Provider(config=AwsConfig(region="us-east-1", endpoint_url={aws.config.endpoint_url!r}))
        here = Provider(config=LocalConfig(root={str(tmp_path)!r}))
        @here.local().task
        def keep(df):
            return df
        pipeline = Pipeline("p").source(aws.bucket(bucket={lake!r}, path="raw.parquet")).transform(keep).to(here.bucket(bucket="o", path="out.parquet"))
    """))
    assert main(["analyze", "--json", str(file)]) == 0
    data = json.loads(capsys.readouterr().out)
    (crossing,) = data["crossings"]
    assert crossing["bytes"] == s3_size(aws, lake, "raw.parquet") and crossing["usd_per_gb"] == 0.09
    assert (crossing["from_cloud"], crossing["to_cloud"], crossing["direction"]) == ("aws", "local", "reads")
    assert data["egress"] == {"usd_per_run": pytest.approx(crossing["usd"]), "complete": True, "prices": {"aws": pytest.approx(data["egress"]["prices"]["aws"])}}
    # a step reading all of its input from S3 on this machine could run on AWS
    assert data["warnings"] and "could run on aws" in data["warnings"][0]


# -- generate: one Terraform root for every provider ------------------------------------------


PIPELINE = """
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import AwsConfig, LambdaConfig, LocalConfig
import fake_cloud

aws = Provider(config=AwsConfig(region="us-east-1"))
other = Provider(config=fake_cloud.FakeCloudConfig(project="p1"))
here = Provider(config=LocalConfig(root={root!r}))

@aws.serverless(config=LambdaConfig()).task
def clean(df):
    return df

@other.serverless().task
def enrich(df):
    return df

@here.local().task
def report(df):
    return df

raw = aws.bucket(bucket="glacier-multi-lake", path="raw.parquet")
stage = other.bucket(bucket="stage", path="clean.parquet")
mid = aws.bucket(bucket="glacier-multi-lake", path="enriched.parquet")
pipeline = Pipeline("multi").source(raw).transform(clean).to(stage).transform(enrich).to(mid).transform(report).to(here.bucket(bucket="o", path="r.parquet"))
"""


def test_generate_writes_one_root_module_with_every_providers_blocks(fake: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import hashlib
    import zipfile

    import hcl2

    from glacier.cli import load_pipeline
    from glacier.testing.terraform import assert_terraform_loads
    from glacier_aws.infra.artifact import Artifact

    def build_artifact(modules: Any, config: Any, out_dir: Path, functions: Any = ()) -> Artifact:
        # The real build downloads Lambda's wheels; a small zip stands in.
        path = out_dir / f"glacier-lambda-{config.runtime}-{config.architecture}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(zipfile.ZipInfo("glacier_aws/handler.py", date_time=(1980, 1, 1, 0, 0, 0)), "def handler(e, c):\n    return {}\n")
        digest = base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
        return Artifact(path, digest, path.stat().st_size, 60, {"glacier-aws": 60}, config.runtime, config.architecture)

    stand_in = types.ModuleType("glacier_aws.infra.artifact")
    stand_in.build_artifact = build_artifact  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "glacier_aws.infra.artifact", stand_in)
    file = tmp_path / "multi_pipeline.py"
    file.write_text(PIPELINE.format(root=str(tmp_path / "data")))
    from glacier.infra.access import UnfederatedAccessWarning

    # glacier-aws knows no federation with the stand-in cloud: it says so, for both directions.
    with pytest.warns(UnfederatedAccessWarning) as warned:
        result = load_pipeline(f"{file}:pipeline").run(mode="generate", out=tmp_path / "infra")
    assert sorted({str(w.message).split("'")[1] for w in warned}) == ["multi-clean", "multi-enrich"]

    assert result.providers == ["aws", "fakecloud"]
    tf = sorted(p.name for p in (tmp_path / "infra").iterdir() if p.suffix == ".tf")
    assert tf == ["main.tf"]  # one root
    assert_terraform_loads(tmp_path / "infra")
    with open(tmp_path / "infra" / "main.tf") as f:
        doc = hcl2.load(f)
    from glacier.testing.terraform import unquote

    required = {name: body for block in doc["terraform"] for entry in block["required_providers"] for name, body in entry.items() if isinstance(body, dict)}
    assert {name: unquote(body["source"]) for name, body in required.items()} == {"aws": "hashicorp/aws", "fakecloud": "example/fakecloud"}
    variables = {unquote(name) for block in doc["variable"] for name, body in block.items() if isinstance(body, dict)}
    assert variables == {"aws_region", "fakecloud_project"}
    types_ = {unquote(t) for block in doc["resource"] for t, body in block.items() if isinstance(body, dict)}
    assert {"aws_lambda_function", "aws_s3_bucket", "fakecloud_bucket", "fakecloud_function"} <= types_
    assert {e["provider"] for e in result.manifest["functions"].values()} == {"aws", "fakecloud"}


def test_a_plugins_price_for_a_provider_takes_precedence_over_glaciers_table() -> None:
    from glacier.plugins import EgressPrice, get_plugin_manager, hookimpl
    from glacier.plugins.registry import clear_caches

    class Negotiated:
        @hookimpl
        def glacier_egress_prices(self) -> list[EgressPrice]:
            return [EgressPrice("aws", 0.02, "https://example.invalid/contract", "2026-12-01", "a negotiated rate")]

    assert egress_price("aws").usd_per_gb == 0.09  # type: ignore[union-attr]
    get_plugin_manager().register(Negotiated(), name="test-negotiated")
    clear_caches()
    try:
        assert egress_price("aws") == EgressPrice("aws", 0.02, "https://example.invalid/contract", "2026-12-01", "a negotiated rate")
    finally:
        get_plugin_manager().unregister(name="test-negotiated")
        clear_caches()
    assert egress_price("aws").usd_per_gb == 0.09  # type: ignore[union-attr]
