"""glacier.plugins.identity: private token files that refresh in time, and hooks that answer or say what is missing."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

import glacier.plugins.identity as identity
from glacier.errors import IdentityError
from glacier.plugins.identity import TokenFile, audience_token_file, configure_credentials, identity_token, jwt_claims, write_private
from glacier.plugins import hookimpl
from glacier.plugins.registry import get_plugin_manager
from glacier.run.protocol import handle_deployed
from glacier.testing.tokens import make_jwt


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def identity_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh identity folder and no tokens or set-up left from another test."""
    folder = tmp_path / "identity"
    monkeypatch.setenv("GLACIER_IDENTITY_DIR", str(folder))
    monkeypatch.setattr(identity, "_token_files", {})
    monkeypatch.setattr(identity, "_configured", False)
    yield folder


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TokenPlugin:
    """A plugin that answers one audience with fresh tokens and counts what it is asked."""

    def __init__(self, audience: str, lifetime: float = 3600.0) -> None:
        self.audience, self.lifetime = audience, lifetime
        self.issued = 0
        self.configured: list[MutableMapping[str, str]] = []

    @hookimpl
    def glacier_identity_token(self, audience: str) -> str | None:
        if audience != self.audience:
            return None
        self.issued += 1
        return make_jwt({"aud": audience, "n": self.issued}, lifetime=self.lifetime)

    @hookimpl
    def glacier_configure_credentials(self, environ: MutableMapping[str, str]) -> None:
        self.configured.append(environ)


@pytest.fixture
def plugin() -> Iterator[TokenPlugin]:
    found = TokenPlugin("api://test-audience")
    pm = get_plugin_manager()
    pm.register(found, name="test-token-plugin")
    yield found
    pm.unregister(found)


def test_a_token_file_is_readable_by_its_owner_only_in_a_folder_only_they_can_open(identity_dir: Path) -> None:
    identity_dir.mkdir(mode=0o755)
    os.chmod(identity_dir, 0o755)  # made too open by someone else
    path = TokenFile("t.jwt", lambda: make_jwt({"sub": "me"})).refresh()
    assert path.parent == identity_dir
    assert mode(identity_dir) == 0o700
    assert mode(path) == 0o600
    assert jwt_claims(path.read_text())["sub"] == "me"


def test_a_refreshed_token_replaces_the_file_whole_and_leaves_no_temporary_file(identity_dir: Path) -> None:
    tokens = iter(["first-token", "second-token"])
    file = TokenFile("t.jwt", lambda: next(tokens))
    path = file.refresh()
    with open(path) as reader:  # a library that opened the old token before the refresh
        file.refresh(force=True)
        assert reader.read() == "first-token"  # replaced by rename, not truncated in place
    assert path.read_text() == "second-token"
    assert mode(path) == 0o600
    assert sorted(p.name for p in identity_dir.iterdir()) == ["t.jwt"]


@pytest.mark.parametrize(
    ("lifetime", "fresh_until"),
    [(3600, 600), (600, 300), (60, 30), (None, 600)],
    ids=["hour-long token: 10 minutes", "10-minute token: half its life", "minute token: half its life", "not a JWT: 10 minutes"],
)
def test_a_token_is_fetched_again_after_ten_minutes_or_half_its_lifetime(lifetime: int | None, fresh_until: int) -> None:
    clock = Clock()
    issued: list[int] = []

    def fetch() -> str:
        issued.append(1)
        if lifetime is None:
            return "opaque-token"
        return make_jwt({"iat": int(clock.now), "exp": int(clock.now) + lifetime})

    file = TokenFile("t.jwt", fetch, clock=clock)
    file.refresh()
    clock.now += fresh_until - 1
    file.refresh()
    assert len(issued) == 1, "still fresh: not fetched again"
    clock.now += 1
    file.refresh()
    assert len(issued) == 2, "stale: fetched again"


def test_a_token_file_removed_from_under_it_is_written_again() -> None:
    file = TokenFile("t.jwt", lambda: "a-token")
    file.refresh().unlink()
    assert file.is_stale()
    assert file.refresh().read_text() == "a-token"


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(IdentityError, match="came back empty"):
        TokenFile("t.jwt", lambda: "  ").refresh()


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden"], ids=["empty", "parent", "folder", "hidden"])
def test_a_private_file_is_a_plain_name_in_the_identity_folder(name: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        write_private(name, "x")


@pytest.mark.parametrize(
    ("token", "claims"),
    [
        (make_jwt({"sub": "s", "iat": 1, "exp": 2}), {"sub": "s", "iat": 1, "exp": 2}),
        ("not.a.jwt", {}),
        ("opaque", {}),
        ("a.W10.c", {}),  # a payload that is JSON but not an object
    ],
    ids=["jwt", "three-parts-not-base64-json", "one-part", "list-payload"],
)
def test_jwt_claims_are_read_without_verifying_and_never_raise(token: str, claims: dict[str, Any]) -> None:
    assert jwt_claims(token) == claims


def test_without_a_plugin_that_knows_the_identity_the_error_names_the_audience_and_the_fix() -> None:
    with pytest.raises(IdentityError) as caught:
        identity_token("sts.amazonaws.com")
    assert "'sts.amazonaws.com'" in caught.value.what
    assert caught.value.hint and "Cloud Functions" in caught.value.hint and "Azure Functions" in caught.value.hint


def test_the_first_plugin_that_answers_gives_the_token(plugin: TokenPlugin) -> None:
    assert jwt_claims(identity_token("api://test-audience"))["aud"] == "api://test-audience"
    with pytest.raises(IdentityError, match="'api://other'"):
        identity_token("api://other")


def test_one_token_file_per_audience_is_kept_and_refreshed(plugin: TokenPlugin) -> None:
    first = audience_token_file("api://test-audience")
    assert audience_token_file("api://test-audience") == first
    assert plugin.issued == 1, "fresh: the second caller shares the file"
    assert mode(first) == 0o600 and jwt_claims(first.read_text())["aud"] == "api://test-audience"


def test_credentials_are_configured_once_per_process_then_only_refreshed(plugin: TokenPlugin) -> None:
    configure_credentials()
    configure_credentials()
    assert len(plugin.configured) == 1
    assert plugin.configured[0] is os.environ
    given: dict[str, str] = {}
    configure_credentials(given)  # an explicit environment always runs the hooks
    assert plugin.configured[-1] is given


class FailingPlugin:
    @hookimpl
    def glacier_configure_credentials(self, environ: MutableMapping[str, str]) -> None:
        raise IdentityError("no token for 'sts.amazonaws.com' here", "run it on Cloud Functions")


def test_a_deployed_function_whose_credentials_fail_runs_no_step_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import polars as pl

    monkeypatch.setenv("GLACIER_TASK", "glacier.testing.tasks:double_value")
    pl.DataFrame({"value": [1]}).write_parquet(tmp_path / "raw.parquet")
    payload = {
        "protocol": 1, "run_id": "r", "step": "double_value", "attempt": 1,
        "task": {"module": "glacier.testing.tasks", "qualname": "double_value", "file": None},
        "sources": {"df": {"uri": f"file://{tmp_path}/raw.parquet", "config": None}},
        "target": {"uri": f"file://{tmp_path}/out.parquet", "config": None},
    }  # fmt: skip
    failing = FailingPlugin()
    pm = get_plugin_manager()
    pm.register(failing, name="test-failing-credentials")
    try:
        result = handle_deployed(payload)
        again = handle_deployed(payload)  # a failed set-up is tried again, not remembered as done
    finally:
        pm.unregister(failing)
    assert result["ok"] is False and again["ok"] is False
    error = result["error"]
    assert error["type"] == "StepError" and error["step"] == "double_value"
    assert "credentials for another cloud" in error["what"] and "'sts.amazonaws.com'" in error["what"]
    assert error["hint"] == "run it on Cloud Functions"
    assert not (tmp_path / "out.parquet").exists()
    assert handle_deployed(payload)["ok"] is True, "once the set-up works, the step runs"


def test_a_token_going_stale_is_rewritten_without_waiting_for_the_next_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    short = TokenPlugin("api://short-lived", lifetime=2.0)  # half its life: stale after 1 s
    pm = get_plugin_manager()
    pm.register(short, name="test-short-lived-tokens")
    monkeypatch.setattr(identity, "_REFRESH_POLL", 0.2)
    try:
        path = audience_token_file("api://short-lived")
        first = path.read_text()
        deadline = time.monotonic() + 10
        while path.read_text() == first and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        monkeypatch.setattr(identity, "_token_files", {})  # the refresh thread has nothing left to do
        pm.unregister(short)
    assert path.read_text() != first, "the refresh thread rewrote the stale token"
    assert jwt_claims(path.read_text())["n"] >= 2 and mode(path) == 0o600
