"""The light gs:// client (glacier_gcp.light), as a function of another cloud uses it: no gcsfs importable.

It passes the same bucket and atomic-commit contracts as gcsfs against fake-gcs-server,
writes a target in one upload (a resumable session for large ones, cancelled on
failure), fingerprints by generation and names the URI in its errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import glacier.plugins.storage as storage_module
from glacier import Bucket, Provider
from glacier.config import GcpConfig
from glacier.errors import StorageUnreachableError
from glacier.testing import AtomicCommitContract, BucketContract, RunSemanticsContract, sample_frame
from glacier_gcp.light import CHUNK, LightGcsFileSystem
from glacier_gcp.storage import GcsStorage, LightGcsStorage

from .fixtures import GcpFixtures


@pytest.fixture
def without_gcsfs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """gcsfs cannot be imported (as in a Lambda artifact) and no storage built before is reused."""
    for name in ("gcsfs", "gcsfs.core"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(storage_module, "_storages", {})
    yield


@pytest.fixture(autouse=True)
def _no_gcsfs_in_this_module(without_gcsfs: None) -> None:
    """Every test here runs as inside another cloud's function: GcsStorage without gcsfs."""


class LightGcsFixtures(GcpFixtures):
    """Buckets whose storage is GcsStorage where gcsfs is missing."""

    @pytest.fixture
    def make_bucket(self, gcp_config: GcpConfig, gcs_bucket: str, without_gcsfs: None) -> Callable[[str], Bucket]:
        provider = Provider(config=gcp_config)

        def make(path: str) -> Bucket:
            bucket = provider.bucket(bucket=gcs_bucket, path=path)
            assert isinstance(bucket.storage, GcsStorage) and isinstance(bucket.storage.fs, LightGcsFileSystem)
            return bucket

        return make


class TestLightGcsBuckets(BucketContract, AtomicCommitContract, LightGcsFixtures):
    pass


class TestLightGcsRunSemantics(RunSemanticsContract, LightGcsFixtures):
    """The seed ETL equals polars, the cache fingerprints by generation, resume: on the light client."""


@pytest.fixture
def light(gcp_config: GcpConfig) -> LightGcsStorage:
    return LightGcsStorage(gcp_config)


def test_without_gcsfs_gs_storage_uses_the_light_client(gcp_config: GcpConfig) -> None:
    assert isinstance(GcsStorage(gcp_config).fs, LightGcsFileSystem)


def test_the_fingerprint_is_the_generation_and_changes_on_rewrite(light: LightGcsStorage, gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/fp/x.parquet"
    light.write(sample_frame(5), uri)
    info = light.info(uri)
    assert info["generation"] and light.fingerprint(uri).startswith(f"generation={info['generation']};")
    light.write(sample_frame(5), uri)  # same bytes, new object
    assert light.info(uri)["generation"] != info["generation"]


def test_a_large_write_is_one_resumable_upload_read_back_equal(light: LightGcsStorage, gcs_bucket: str) -> None:
    path = f"{gcs_bucket}/big/blob.bin"
    data = bytes(range(256)) * (CHUNK * 3 // 256 + 77)  # three whole chunks and a tail
    with light.fs.open(path, "wb", block_size=CHUNK) as out:
        for i in range(0, len(data), 100_000):
            out.write(data[i : i + 100_000])
    assert light.fs.cat_file(path) == data
    assert light.fs.cat_file(path, 10, 20) == data[10:20]
    assert light.fs.info(path)["size"] == len(data)


def test_a_cancelled_resumable_upload_leaves_the_old_object(light: LightGcsStorage, gcs_bucket: str) -> None:
    path = f"{gcs_bucket}/big/kept.bin"
    light.fs.pipe_file(path, b"old")
    out = light.fs.open(path, "wb", block_size=CHUNK)
    out.write(b"x" * (CHUNK * 2 + 5))  # two chunks already sent to the session
    out.write(b"y" * CHUNK)
    assert getattr(out, "_session_uri", None), "the upload went through a resumable session"
    out.discard()
    out.close()
    assert light.fs.cat_file(path) == b"old"


def test_a_failing_sink_of_a_large_frame_leaves_the_previous_content(light: LightGcsStorage, gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/atomic/big.parquet"
    old = sample_frame(7)
    light.write(old, uri)
    rows = pl.select(x=pl.int_range(0, 3_000_000)).with_columns(y=pl.col("x").hash())

    def explode_late(series: pl.Series) -> pl.Series:
        if series.max() >= 2_500_000:
            raise RuntimeError("late failure")
        return series

    failing = rows.lazy().with_columns(pl.col("x").map_batches(explode_late, return_dtype=pl.Int64))
    with pytest.raises(Exception, match="late failure"):
        light.write(failing, uri)
    assert_frame_equal(light.scan(uri).collect(), old)


def test_a_missing_object_names_its_uri(light: LightGcsStorage, gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/nothing/here.parquet"
    with pytest.raises(FileNotFoundError, match=uri):
        light.info(uri)
    with pytest.raises(FileNotFoundError, match=uri):
        light.fs.cat_file(uri)
    assert not light.exists(uri)


def test_an_unreachable_endpoint_is_not_a_missing_object() -> None:
    storage = LightGcsStorage(GcpConfig(project="p", endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(StorageUnreachableError, match="127.0.0.1:9"):
        storage.exists("gs://lake/x.parquet")


def test_a_glob_lists_only_matching_objects(light: LightGcsStorage, gcs_bucket: str) -> None:
    for name in ("a/p1.parquet", "a/p2.parquet", "a/deeper/p3.parquet", "a/notes.txt"):
        light.fs.pipe_file(f"{gcs_bucket}/{name}", b"x")
    found = light.fs.glob(f"{gcs_bucket}/a/*.parquet")
    assert found == [f"{gcs_bucket}/a/p1.parquet", f"{gcs_bucket}/a/p2.parquet"]
    assert sorted(light.fs.ls(f"{gcs_bucket}/a", detail=False)) == [f"{gcs_bucket}/a/deeper", f"{gcs_bucket}/a/notes.txt", f"{gcs_bucket}/a/p1.parquet", f"{gcs_bucket}/a/p2.parquet"]
    assert light.fs.info(f"{gcs_bucket}/a/deeper")["type"] == "directory"


def test_a_create_only_write_refuses_an_existing_object(light: LightGcsStorage, gcs_bucket: str) -> None:
    path = f"{gcs_bucket}/once/record.json"
    light.fs.pipe_file(path, b"first", mode="create")
    with pytest.raises(FileExistsError, match=f"gs://{path}"):
        light.fs.pipe_file(path, b"second", mode="create")
    assert light.fs.cat_file(path) == b"first"
