"""gs:// buckets against fake-gcs-server (the contract suites are in test_contracts.py): options, the seed's ETL, cache and resume."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import Pipeline, Provider, StepStatus, hookimpl
from glacier.config import GcpConfig
from glacier.plugins.registry import get_plugin_manager
from glacier.testing import sample_frame
from glacier_gcp.storage import GcsStorage, is_anonymous, polars_storage_options, storage_endpoint
from glacier_gcp.testing.gcs_server import FakeGcsServer


def put(storage: GcsStorage, uri: str, frame: pl.DataFrame) -> None:
    """Upload ``frame`` as the test's own data, through gcsfs."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    storage.fs.pipe(storage.path(uri), buffer.getvalue())
    storage.fs.invalidate_cache()


def test_polars_options_reach_the_endpoint_anonymously(gcp_config: GcpConfig, gcs_bucket: str) -> None:
    options = polars_storage_options(gcp_config)
    assert options == {"google_base_url": gcp_config.endpoint_url, "skip_signature": "true"}
    uri = f"gs://{gcs_bucket}/direct.parquet"
    put(GcsStorage(gcp_config), uri, pl.DataFrame({"x": [1]}))
    assert pl.scan_parquet(uri, storage_options=options, credential_provider=None).collect()["x"].to_list() == [1]


def test_against_googles_endpoint_polars_gets_no_options_and_its_own_credentials() -> None:
    storage = GcsStorage(GcpConfig(project="p"))
    assert polars_storage_options(storage.config) == {} and storage.storage_options() is None
    assert storage.credential_provider() == "auto" and not is_anonymous(storage.config)


def test_storage_emulator_host_is_honoured(monkeypatch: pytest.MonkeyPatch, gcs_server: FakeGcsServer, gcs_bucket: str) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"127.0.0.1:{gcs_server.port}")
    config = GcpConfig(project="p")
    assert storage_endpoint(config) == gcs_server.endpoint and is_anonymous(config)
    storage, uri = GcsStorage(config), f"gs://{gcs_bucket}/env/data.parquet"
    storage.write(sample_frame(5), uri)
    assert_frame_equal(storage.scan(uri).collect(), sample_frame(5))


def test_a_credentials_file_in_the_chain_makes_access_signed(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    key = tmp_path / "adc.json"
    key.write_text("{}")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    config = GcpConfig(project="p", endpoint_url="http://127.0.0.1:9")
    assert not is_anonymous(config)
    assert polars_storage_options(config) == {"google_base_url": "http://127.0.0.1:9"}


def test_gcs_and_gs_uris_name_the_same_object(gcp: Provider, gcp_config: GcpConfig, gcs_bucket: str) -> None:
    storage = GcsStorage(gcp_config)
    storage.write(sample_frame(9), f"gs://{gcs_bucket}/same.parquet")
    assert storage.exists(f"gcs://{gcs_bucket}/same.parquet")
    assert storage.fingerprint(f"gcs://{gcs_bucket}/same.parquet") == storage.fingerprint(f"gs://{gcs_bucket}/same.parquet")


def test_the_fingerprint_is_the_objects_generation(gcp_config: GcpConfig, gcs_bucket: str) -> None:
    storage, uri = GcsStorage(gcp_config), f"gs://{gcs_bucket}/gen.parquet"
    storage.write(sample_frame(3), uri)
    generation = storage.info(uri)["generation"]
    assert storage.fingerprint(uri).startswith(f"generation={generation};")
    storage.write(sample_frame(3), uri)  # the same bytes again: a new generation
    assert storage.fingerprint(uri) != f"generation={generation};size={storage.size(uri)}"


@pytest.mark.parametrize("bucket", ["ab", "Data", "goog-lake", "-lake", "lake-"])
def test_bucket_names_gcs_refuses_are_refused(gcp: Provider, bucket: str) -> None:
    from glacier.errors import PipelineDefinitionError

    with pytest.raises(PipelineDefinitionError, match="GCS bucket name"):
        gcp.bucket(bucket=bucket, path="x.parquet")


def _extract(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.filter(pl.col("value").is_not_null())


def _transform(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


def _aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


@pytest.fixture
def calls() -> Iterator[list[str]]:
    """The steps that ran to success, in order, as the lifecycle hooks report them (not counted inside the tasks: that would change their cache keys)."""
    ran: list[str] = []

    class Recorder:
        @hookimpl
        def glacier_step_finished(self, run: Any, step: Any, result: Any) -> None:
            if result.status is StepStatus.SUCCEEDED:
                ran.append(step.name)

    get_plugin_manager().register(Recorder(), name="test-gcs-calls")
    yield ran
    get_plugin_manager().unregister(name="test-gcs-calls")


def seed_pipeline(gcp: Provider, bucket: str, *, cache: bool = False) -> Pipeline:
    local = gcp.local()

    def counted(func):  # noqa: ANN001, ANN202
        return local.task(name=func.__name__.strip("_"), cache=cache)(func)

    b = {n: gcp.bucket(bucket=bucket, path=f"{n}.parquet") for n in ("raw", "intermediate/step1", "intermediate/step2", "output/result")}
    return (
        Pipeline(name="etl")
        .source(b["raw"]).transform(counted(_extract)).to(b["intermediate/step1"])
        .transform(counted(_transform)).to(b["intermediate/step2"])
        .transform(counted(_aggregate)).to(b["output/result"])
    )


def test_seed_etl_on_gcs_matches_polars(gcp: Provider, gcp_config: GcpConfig, gcs_bucket: str, tmp_path: Any) -> None:
    raw = sample_frame(5000)
    storage = GcsStorage(gcp_config)
    put(storage, f"gs://{gcs_bucket}/raw.parquet", raw)
    result = seed_pipeline(gcp, gcs_bucket).run(mode="local")
    assert result.ok, result.summary()
    got = pl.read_parquet(f"gs://{gcs_bucket}/output/result.parquet", storage_options=polars_storage_options(gcp_config), credential_provider=None)
    assert_frame_equal(got, _aggregate(_transform(_extract(raw.lazy()))).collect())
    assert result["extract"].rows == raw["value"].is_not_null().sum()


def test_cache_on_gcs_uses_generations_and_reruns_only_what_changed(gcp: Provider, gcp_config: GcpConfig, gcs_bucket: str, calls: list[str]) -> None:
    storage = GcsStorage(gcp_config)
    put(storage, f"gs://{gcs_bucket}/raw.parquet", sample_frame(100))
    first = seed_pipeline(gcp, gcs_bucket, cache=True).run()
    assert first.ok and calls == ["extract", "transform", "aggregate"]
    assert all(fp.startswith("generation=") for fp in first["extract"].input_fingerprints.values())

    calls.clear()
    second = seed_pipeline(gcp, gcs_bucket, cache=True).run()
    assert calls == [] and {s.status for s in second.steps.values()} == {StepStatus.CACHED}

    put(storage, f"gs://{gcs_bucket}/raw.parquet", sample_frame(100))  # the same bytes, uploaded again: a new generation
    third = seed_pipeline(gcp, gcs_bucket, cache=True).run()
    assert third.ok and calls == ["extract", "transform", "aggregate"]


def test_resume_on_gcs_runs_the_failed_step_and_what_follows(gcp: Provider, gcp_config: GcpConfig, gcs_bucket: str, calls: list[str]) -> None:
    put(GcsStorage(gcp_config), f"gs://{gcs_bucket}/raw.parquet", sample_frame(100))
    pipeline = seed_pipeline(gcp, gcs_bucket)
    pipeline.steps[1].task.func = lambda df: 1 / 0  # the fault
    failed = pipeline.run()
    assert failed["transform"].status is StepStatus.FAILED and calls == ["extract"]

    calls.clear()
    resumed = seed_pipeline(gcp, gcs_bucket).run(resume=True)
    assert resumed.ok, resumed.summary()
    assert calls == ["transform", "aggregate"]
    assert resumed["extract"].status is StepStatus.REUSED
