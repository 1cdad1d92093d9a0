"""az:// buckets against Azurite: options, credentials, names, fingerprints, analyze (the contract suites, the seed ETL, cache and resume among them, are in test_contracts.py)."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

from glacier import Pipeline, Provider
from glacier.config import AzureConfig
from glacier.errors import PipelineDefinitionError
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
