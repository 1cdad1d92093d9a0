"""Bucket names and paths are normalized once, in core, and may not leave their bucket.

The checks run before a provider's ``bucket_uri`` sees the name and the path, so every
scheme gets them, a third party's included; the provider here is such a third party.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from glacier import Bucket
from glacier.errors import PipelineDefinitionError
from glacier.plugins.backend import ProviderBackend


class _ThirdParty(ProviderBackend):
    """A provider backend as a plugin would write it: it records what core hands it."""

    name: ClassVar[str] = "thirdparty"
    scheme: ClassVar[str] = "tp"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.asked: list[tuple[str, str]] = []

    def bucket_uri(self, bucket: str, path: str) -> str:
        self.asked.append((bucket, path))
        return super().bucket_uri(bucket, path)


class _Provider:
    """The part of :class:`glacier.Provider` that :class:`Bucket` uses."""

    name = "thirdparty"
    config = None

    def __init__(self) -> None:
        self.backend = _ThirdParty()


def make(bucket: str, path: str) -> Bucket:
    return Bucket(_Provider(), bucket, path)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("raw/a.parquet", id="plain"),
        pytest.param("raw//a.parquet", id="double-slash"),
        pytest.param("./raw/./a.parquet", id="dots"),
        pytest.param("raw/x/../a.parquet", id="down-and-up"),
        pytest.param("/raw/a.parquet", id="leading-slash"),
    ],
)
def test_paths_are_normalized_before_the_provider_sees_them(path: str) -> None:
    provider = _Provider()
    made = Bucket(provider, "lake", path)  # type: ignore[arg-type]
    assert provider.backend.asked == [("lake", "raw/a.parquet")]
    assert (made.uri, made.path) == ("tp://lake/raw/a.parquet", "raw/a.parquet")
    assert made == make("lake", "raw/a.parquet")


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        pytest.param("parts/./*.parquet", "parts/*.parquet", id="star"),
        pytest.param("p/x/../[ab]?.parquet", "p/[ab]?.parquet", id="class-and-question-mark"),
        pytest.param("p/**/*.parquet", "p/**/*.parquet", id="double-star"),
    ],
)
def test_glob_characters_survive_normalization(path: str, normalized: str) -> None:
    assert make("lake", path).path == normalized


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("../../escaped/x.parquet", id="up-twice"),
        pytest.param("a/../../x.parquet", id="down-then-up-twice"),
        pytest.param("..", id="dot-dot"),
        pytest.param("./../x.parquet", id="dot-then-up"),
        pytest.param("../*.parquet", id="glob-above"),
    ],
)
def test_a_path_leaving_its_bucket_is_refused(path: str) -> None:
    provider = _Provider()
    with pytest.raises(PipelineDefinitionError) as info:
        Bucket(provider, "lake", path)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"path {path!r}" in message and "bucket 'lake'" in message
    assert "\n\nHint: " in message
    assert provider.backend.asked == []  # refused before the provider made a URI


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dot-dot"),
        pytest.param("lake/../../..", id="climbing"),
        pytest.param("lake/raw", id="two-segments"),
    ],
)
def test_a_bucket_name_must_be_one_segment(name: str) -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        make(name, "a.parquet")
    message = str(info.value)
    assert f"Bucket name {name!r}" in message
    assert "\n\nHint: " in message and "path=" in message


@pytest.mark.parametrize(
    ("uri", "normalized"),
    [
        pytest.param("s3://b/k.parquet", "s3://b/k.parquet", id="s3-unchanged"),
        pytest.param("s3://b/x/../k.parquet", "s3://b/k.parquet", id="s3-key-up"),
        pytest.param("s3://b//raw/./k.parquet", "s3://b/raw/k.parquet", id="s3-key-slashes-dots"),
        pytest.param("memory://lake/x/../a.parquet", "memory://lake/a.parquet", id="memory"),
        pytest.param("gs://b/parts/./*.parquet", "gs://b/parts/*.parquet", id="glob"),
        pytest.param("file:///data/x/../a.parquet", "file:///data/a.parquet", id="file"),
        pytest.param("/data/./x//a.parquet", "file:///data/x/a.parquet", id="bare-path"),
    ],
)
def test_uris_given_directly_are_normalized(uri: str, normalized: str) -> None:
    made = Bucket.from_uri(uri)
    assert made.uri == normalized
    assert made == Bucket.from_uri(normalized)


def test_a_uri_names_its_bucket_and_normalized_path() -> None:
    made = Bucket.from_uri("s3://lake/raw/x/../a.parquet")
    assert (made.bucket, made.path) == ("lake", "raw/a.parquet")


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("s3://b/../k.parquet", id="key-above-bucket"),
        pytest.param("memory://lake/a/../../x.parquet", id="down-then-up-twice"),
        pytest.param("s3://../k.parquet", id="bucket-dot-dot"),
        pytest.param("s3://./k.parquet", id="bucket-dot"),
    ],
)
def test_a_uri_leaving_its_bucket_is_refused(uri: str) -> None:
    with pytest.raises(PipelineDefinitionError) as info:
        Bucket.from_uri(uri)
    assert uri in str(info.value)
    assert "\n\nHint: " in str(info.value)
