"""One pipeline over AWS, Google Cloud, Azure and this machine, on the three emulators at once.

S3 is moto's server, GCS is fake-gcs-server and Azure Blob is Azurite, each started
once for this module on 127.0.0.1 by its provider package's testing helper. The
pipeline is the multi-cloud shape of the docs: raw events on S3, a Lambda step to GCS,
a Cloud Functions step joining reference data from Azure to Azure Blob, an Azure
Functions aggregate to a local report. In local mode every step runs here and reads
and writes the other clouds' buckets directly; the result must equal plain polars.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import Pipeline, Provider
from glacier.testing import sample_frame


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The three emulators, and an environment that reaches them and nothing else."""
    from glacier_aws.testing.moto_server import moto_server
    from glacier_azure.testing.azurite import ACCOUNT_KEY, Azurite
    from glacier_gcp.testing.gcs_server import FakeGcsServer

    logs = tmp_path_factory.mktemp("emulators")
    with pytest.MonkeyPatch.context() as env:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
            "AZURE_STORAGE_KEY": ACCOUNT_KEY,
            "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_ROOT": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
            "NO_GCE_CHECK": "True", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
            "CLOUDSDK_CONFIG": str(tmp_path_factory.mktemp("gcloud")),
        }.items():
            env.setenv(key, value)
        for key in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "AZURE_STORAGE_CONNECTION_STRING"):
            env.delenv(key, raising=False)
        with moto_server(log_dir=logs) as moto, FakeGcsServer() as gcs, Azurite(log_dir=logs) as azurite:
            yield {"moto": moto, "gcs": gcs, "azurite": azurite}


def build(clouds: dict[str, Any], root: Path, *, cache: bool = False) -> tuple[Pipeline, dict[str, Any]]:
    """The mixed pipeline, with events written to S3 and reference data to Azure.

    The Google Cloud step fails while ``root/FAIL_JOIN`` exists.
    """
    import boto3

    from glacier.config import AwsConfig, GcpConfig, LocalConfig

    suffix = uuid.uuid4().hex[:10]
    aws = Provider(config=AwsConfig(region="us-east-1", endpoint_url=clouds["moto"].endpoint))
    gcp = Provider(config=GcpConfig(project=clouds["gcs"].project, endpoint_url=clouds["gcs"].endpoint))
    azure = Provider(config=clouds["azurite"].config())
    here = Provider(config=LocalConfig(root=str(root)))
    boto3.client("s3", endpoint_url=clouds["moto"].endpoint, region_name="us-east-1").create_bucket(Bucket=f"raw-{suffix}")
    clouds["gcs"].create_bucket(f"mid-{suffix}")
    clouds["azurite"].create_container(f"lake-{suffix}")

    buckets = {
        "events": aws.bucket(bucket=f"raw-{suffix}", path="events/data.parquet"),
        "clean": gcp.bucket(bucket=f"mid-{suffix}", path="clean.parquet"),
        "reference": azure.bucket(bucket=f"lake-{suffix}", path="reference/categories.parquet"),
        "joined": azure.bucket(bucket=f"lake-{suffix}", path="joined.parquet"),
        "report": here.bucket(bucket="reports", path="totals.parquet"),
    }
    raw = sample_frame(30_000)
    categories = pl.DataFrame({"category": [f"c{i}" for i in range(5)], "rank": [3, 1, 4, 1, 5]})
    buckets["events"].storage.write(raw, buckets["events"].uri)
    buckets["reference"].storage.write(categories, buckets["reference"].uri)

    @aws.serverless().task(cache=cache)
    def clean_events(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.filter(pl.col("value").is_not_null())

    @gcp.serverless().task(cache=cache)
    def join_reference(events_df: pl.LazyFrame, categories_df: pl.LazyFrame) -> pl.LazyFrame:
        if (root / "FAIL_JOIN").exists():
            raise RuntimeError("the join's reference data is being rebuilt")
        return events_df.join(categories_df, on="category")

    @azure.serverless().task(cache=cache)
    def aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.group_by("category", "rank").agg(pl.col("value").sum(), pl.len().alias("events")).sort("category")

    first = Pipeline(name="clean").source(buckets["events"]).transform(clean_events).to(buckets["clean"])
    second = Pipeline(name="join").sources({"events_df": buckets["clean"], "categories_df": buckets["reference"]}).transform(join_reference).to(buckets["joined"])
    second.transform(aggregate).to(buckets["report"])
    expected = (
        raw.filter(pl.col("value").is_not_null()).join(categories, on="category")
        .group_by("category", "rank").agg(pl.col("value").sum(), pl.len().alias("events")).sort("category")
    )
    return Pipeline.compose(first, second, name="three_clouds"), {**buckets, "expected": expected}


def test_in_local_mode_the_mixed_pipeline_equals_plain_polars(clouds: dict[str, Any], tmp_path: Path) -> None:
    pipeline, made = build(clouds, tmp_path)
    result = pipeline.run(mode="local")
    assert result.ok, result.summary() + "\n" + "\n".join(str(s.error) for s in result.failed)
    assert_frame_equal(pl.read_parquet(tmp_path / "reports" / "totals.parquet"), made["expected"], check_row_order=False)
    # Each hand-off is a real object in its own cloud's store.
    for name in ("clean", "joined"):
        assert made[name].storage.exists(made[name].uri), made[name].uri


def test_analyze_names_every_crossing_with_its_bytes_and_prices_it(clouds: dict[str, Any], tmp_path: Path) -> None:
    pipeline, made = build(clouds, tmp_path)
    assert pipeline.run(mode="local").ok  # so that every edge has bytes to count
    analysis = pipeline.run(mode="analyze")
    got = {(c.step, c.direction, c.from_cloud, c.to_cloud) for c in analysis.crossings}
    assert got == {
        ("clean_events", "writes", "aws", "gcp"),
        ("join_reference", "reads", "azure", "gcp"),
        ("join_reference", "writes", "gcp", "azure"),
        ("aggregate", "writes", "azure", "local"),
    }
    assert all(c.bytes and c.bytes > 0 and c.usd is not None for c in analysis.crossings)
    assert analysis.egress_usd_per_run == pytest.approx(sum(c.usd for c in analysis.crossings))


def test_visualize_draws_one_subgraph_per_cloud(clouds: dict[str, Any], tmp_path: Path) -> None:
    pipeline, _ = build(clouds, tmp_path)
    text = pipeline.visualize()
    titles = re.findall(r'subgraph c\d+\["(.+)"\]', text)
    assert sorted(titles) == ["aws", "azure", "gcp", "this machine"], text
    assert "aws → gcp" in text and "azure → gcp" in text and "gcp → azure" in text, text


def test_a_failure_in_the_middle_cloud_stops_only_what_depends_on_it_and_resume_goes_on(clouds: dict[str, Any], tmp_path: Path) -> None:
    pipeline, made = build(clouds, tmp_path)
    (tmp_path / "FAIL_JOIN").touch()
    failed = pipeline.run(mode="local")
    assert {name: step.status.value for name, step in failed.steps.items()} == {"clean_events": "succeeded", "join_reference": "failed", "aggregate": "skipped"}
    assert "the join's reference data is being rebuilt" in str(failed["join_reference"].error)

    (tmp_path / "FAIL_JOIN").unlink()
    resumed = pipeline.run(mode="local", resume=True)
    assert {name: step.status.value for name, step in resumed.steps.items()} == {"clean_events": "reused", "join_reference": "succeeded", "aggregate": "succeeded"}
    assert_frame_equal(pl.read_parquet(tmp_path / "reports" / "totals.parquet"), made["expected"], check_row_order=False)


def test_cache_fingerprints_of_all_three_clouds_skip_an_unchanged_second_run_and_see_a_changed_source(clouds: dict[str, Any], tmp_path: Path) -> None:
    pipeline, made = build(clouds, tmp_path, cache=True)
    assert pipeline.run(mode="local").ok
    again = pipeline.run(mode="local")
    assert {name: step.status.value for name, step in again.steps.items()} == dict.fromkeys(("clean_events", "join_reference", "aggregate"), "cached")

    # New reference data on Azure: the GCP step that reads it and the Azure step after it run again.
    reference = made["reference"]
    reference.storage.write(pl.DataFrame({"category": [f"c{i}" for i in range(5)], "rank": [9, 9, 9, 9, 9]}), reference.uri)
    changed = pipeline.run(mode="local")
    assert {name: step.status.value for name, step in changed.steps.items()} == {"clean_events": "cached", "join_reference": "succeeded", "aggregate": "succeeded"}
    assert set(pl.read_parquet(tmp_path / "reports" / "totals.parquet")["rank"]) == {9}
