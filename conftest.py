"""Repository-wide test settings: every test keeps its run records to itself."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run records go to a fresh directory per test, never to the working tree."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("GLACIER_STATE_DIR", str(state))
    return state
