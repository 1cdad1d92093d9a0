"""gs:// buckets against fake-gcs-server: options, credentials, names and fingerprints (the contract suites, the seed ETL, cache and resume among them, are in test_contracts.py)."""

from __future__ import annotations

import io
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from glacier import Provider
from glacier.config import GcpConfig
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




def test_an_unreachable_endpoint_fails_fast_and_is_not_a_missing_object() -> None:
    """Nothing listens on port 9: the error names the endpoint at once, not after gcsfs's six retries.

    gcsfs retries a refused connection six times with backoff (about 35 s here) and then
    raises aiohttp's own error. The bound sits between the two behaviours (under 1 s
    against 35 s), as test_s3's does.
    """
    import time

    from glacier.errors import StorageUnreachableError

    storage = GcsStorage(GcpConfig(project="p", endpoint_url="http://127.0.0.1:9"))
    started = time.monotonic()
    with pytest.raises(StorageUnreachableError, match="127.0.0.1:9"):
        storage.exists("gs://lake/x.parquet")
    with pytest.raises(StorageUnreachableError, match="127.0.0.1:9"):
        storage.write(sample_frame(), "gs://lake/y.parquet")
    assert time.monotonic() - started < 15
