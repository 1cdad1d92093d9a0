"""az:// buckets against Azurite (the contract suites are in test_contracts.py): options, credentials, the seed's ETL, cache and resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import Pipeline, Provider, StepStatus, hookimpl
from glacier.config import AzureConfig
from glacier.errors import PipelineDefinitionError
from glacier.plugins.registry import get_plugin_manager
from glacier.testing import sample_frame
from glacier_azure.storage import AzureBlobStorage, account_key, polars_storage_options
from glacier_azure.testing.azurite import ACCOUNT_KEY, Azurite


def test_polars_options_reach_azurite_on_any_port(azure_config: AzureConfig, container: str) -> None:
    options = polars_storage_options(azure_config)
    assert options == {"account_name": "devstoreaccount1", "account_key": ACCOUNT_KEY, "endpoint": azure_config.endpoint_url, "allow_http": "true"}
    assert "use_emulator" not in options  # it would force port 10000
    uri = f"az://{container}/direct.parquet"
    pl.DataFrame({"x": [1]}).lazy().sink_parquet(uri, storage_options=options)
    assert pl.scan_parquet(uri, storage_options=options).collect()["x"].to_list() == [1]


def test_the_abfss_form_names_the_same_blob(azure: Provider, azure_config: AzureConfig, container: str) -> None:
    frame = sample_frame(11)
    bucket = azure.bucket(bucket=container, path="forms/data.parquet")
    bucket.storage.write(frame, bucket.uri)
    storage = AzureBlobStorage(azure_config)
    abfss = f"abfss://{container}@devstoreaccount1.dfs.core.windows.net/forms/data.parquet"
    assert storage.path(abfss) == storage.path(bucket.uri) == f"{container}/forms/data.parquet"
    assert storage.exists(abfss) and storage.fingerprint(abfss) == storage.fingerprint(bucket.uri)
    with pytest.raises(PipelineDefinitionError, match="names the storage account 'other'"):
        storage.path(f"abfss://{container}@other.dfs.core.windows.net/forms/data.parquet")


def test_the_fingerprint_is_the_blobs_etag(azure: Provider, azurite: Azurite, container: str) -> None:
    from azure.storage.blob import BlobServiceClient

    bucket = azure.bucket(bucket=container, path="fp/data.parquet")
    bucket.storage.write(sample_frame(5), bucket.uri)
    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        etag = client.get_blob_client(container, "fp/data.parquet").get_blob_properties().etag.strip('"')
    assert bucket.storage.fingerprint(bucket.uri).startswith(f"etag={etag};")


@pytest.mark.parametrize("source", ["connection-string", "account-key"])
def test_the_key_comes_from_the_environment_and_never_into_configs_or_payloads(
    azure: Provider, azurite: Azurite, container: str, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    from glacier.dag import TaskInstance
    from glacier.plugins.payload import build_payload

    monkeypatch.delenv("AZURE_STORAGE_KEY")
    if source == "connection-string":
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    else:
        monkeypatch.setenv("AZURE_STORAGE_KEY", ACCOUNT_KEY)
    config = azurite.config()
    assert account_key(config) == ACCOUNT_KEY
    raw, out = azure.bucket(bucket=container, path="k/raw.parquet"), azure.bucket(bucket=container, path="k/out.parquet")
    raw.storage.write(sample_frame(3), raw.uri)
    step = TaskInstance(task=azure.local().task(name="keep")(_extract), source=raw, target=out, name="keep")
    assert ACCOUNT_KEY not in json.dumps(build_payload(step, "run", 1)) + repr(config)


def test_a_connection_string_of_another_account_is_not_used(monkeypatch: pytest.MonkeyPatch, azurite: Azurite) -> None:
    monkeypatch.delenv("AZURE_STORAGE_KEY")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    assert account_key(AzureConfig(storage_account="otherlake")) is None


@pytest.mark.parametrize("name", ["ab", "Data", "a--b", "-ab", "ab-", "a_b"])
def test_container_names_follow_azures_rules(azure: Provider, name: str) -> None:
    with pytest.raises(PipelineDefinitionError, match="not an Azure container name"):
        azure.bucket(bucket=name, path="x.parquet")


def _extract(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.filter(pl.col("value").is_not_null())


def _transform(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.with_columns((pl.col("value") * 2).alias("doubled"))


def _aggregate(df: pl.LazyFrame) -> pl.LazyFrame:
    return df.group_by("category").agg(pl.col("value").sum()).sort("category")


@pytest.fixture
def calls() -> Iterator[list[str]]:
    """The steps that ran to success, in order, as the lifecycle hooks report them (not counted in the tasks, which would change their cache keys)."""
    ran: list[str] = []

    class Recorder:
        @hookimpl
        def glacier_step_finished(self, run: Any, step: Any, result: Any) -> None:
            if result.status is StepStatus.SUCCEEDED:
                ran.append(step.name)

    get_plugin_manager().register(Recorder(), name="test-azure-calls")
    yield ran
    get_plugin_manager().unregister(name="test-azure-calls")


def seed_pipeline(azure: Provider, container: str, *, cache: bool = False) -> Pipeline:
    local = azure.local()

    def counted(func):  # noqa: ANN001, ANN202
        return local.task(name=func.__name__.strip("_"), cache=cache)(func)

    b = {n: azure.bucket(bucket=container, path=f"{n}.parquet") for n in ("raw", "intermediate/step1", "intermediate/step2", "output/result")}
    return (
        Pipeline(name="etl")
        .source(b["raw"]).transform(counted(_extract)).to(b["intermediate/step1"])
        .transform(counted(_transform)).to(b["intermediate/step2"])
        .transform(counted(_aggregate)).to(b["output/result"])
    )


def test_seed_etl_on_blob_storage_matches_polars(azure: Provider, azure_config: AzureConfig, container: str) -> None:
    raw = sample_frame(5000)
    raw.write_parquet(f"az://{container}/raw.parquet", storage_options=polars_storage_options(azure_config))
    result = seed_pipeline(azure, container).run(mode="local")
    assert result.ok, result.summary()
    got = pl.read_parquet(f"az://{container}/output/result.parquet", storage_options=polars_storage_options(azure_config))
    assert_frame_equal(got, _aggregate(_transform(_extract(raw.lazy()))).collect())
    assert result["extract"].rows == raw["value"].is_not_null().sum()


def test_cache_on_blob_storage_uses_etags_and_reruns_only_what_changed(azure: Provider, azure_config: AzureConfig, container: str, calls: list[str]) -> None:
    options = polars_storage_options(azure_config)
    sample_frame(100).write_parquet(f"az://{container}/raw.parquet", storage_options=options)
    first = seed_pipeline(azure, container, cache=True).run()
    assert first.ok and calls == ["extract", "transform", "aggregate"]
    assert all("etag=" in fp for fp in first["extract"].input_fingerprints.values())

    calls.clear()
    second = seed_pipeline(azure, container, cache=True).run()
    assert calls == [] and {s.status for s in second.steps.values()} == {StepStatus.CACHED}

    sample_frame(120).write_parquet(f"az://{container}/raw.parquet", storage_options=options)  # behind adlfs's back
    AzureBlobStorage(azure_config).fs.invalidate_cache()
    third = seed_pipeline(azure, container, cache=True).run()
    assert third.ok and calls == ["extract", "transform", "aggregate"]


def test_resume_on_blob_storage_runs_the_failed_step_and_what_follows(azure: Provider, azure_config: AzureConfig, container: str, calls: list[str]) -> None:
    sample_frame(100).write_parquet(f"az://{container}/raw.parquet", storage_options=polars_storage_options(azure_config))
    pipeline = seed_pipeline(azure, container)
    pipeline.steps[1].task.func = lambda df: 1 / 0  # the fault
    failed = pipeline.run()
    assert failed["transform"].status is StepStatus.FAILED and calls == ["extract"]

    calls.clear()
    resumed = seed_pipeline(azure, container).run(resume=True)
    assert resumed.ok, resumed.summary()
    assert calls == ["transform", "aggregate"]
    assert resumed["extract"].status is StepStatus.REUSED


def test_analyze_prices_data_leaving_azure_and_visualize_draws_an_azure_subgraph(azure: Provider, azure_config: AzureConfig, container: str, tmp_path: Any) -> None:
    from glacier.config import LocalConfig

    raw = azure.bucket(bucket=container, path="an/raw.parquet")
    raw.storage.write(sample_frame(2000), raw.uri)
    local_out = Provider(config=LocalConfig(root=str(tmp_path))).bucket(bucket="l", path="out.parquet")
    pipeline = Pipeline("leaving").source(raw).transform(azure.local().task(name="keep")(_extract)).to(local_out)
    analysis = pipeline.run(mode="analyze")
    (crossing,) = analysis.crossings
    assert (crossing.from_cloud, crossing.uri, crossing.bytes) == ("azure", raw.uri, raw.storage.size(raw.uri))
    assert crossing.usd_per_gb == 0.087 and crossing.usd is not None and crossing.usd > 0
    # A bucket made from a bare az:// URI is placed in Azure by its scheme.
    from glacier import Bucket

    bare = Bucket.from_uri(f"abfss://{container}@devstoreaccount1.dfs.core.windows.net/an/raw.parquet", azure_config)
    graph = Pipeline("bare").source(bare).transform(azure.local().task(name="k2")(_extract)).to(local_out).visualize()
    assert 'subgraph c0["azure"]' in graph or '["azure"]' in graph, graph
