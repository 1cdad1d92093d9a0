"""A payload never chooses code: only config classes of installed plugins are rebuilt.

A payload's bucket configs name a class (``"type": "module:Class"``) and its fields; a
worker or a deployed function rebuilds it. Were any importable name accepted, a payload
whose config type is ``subprocess:run`` would run a command where the step runs. These
payloads are hostile: each would create a marker file if its "config" were called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from glacier.run.process import run_payload
from glacier.run.protocol import handle
from glacier.plugins.serialization import config_from_dict, config_to_dict


def hostile_configs(marker: Path) -> dict[str, dict[str, Any]]:
    """Config "types" that are not configs at all, with fields that would create ``marker``."""
    return {
        "subprocess:run": {"type": "subprocess:run", "fields": {"args": ["touch", str(marker)]}},
        "os:system": {"type": "os:system", "fields": {"command": f"touch {marker}"}},
        "builtins:eval": {"type": "builtins:eval", "fields": {"source": f"open({str(marker)!r}, 'w')"}},
        "dotted": {"type": "os.system", "fields": {"command": f"touch {marker}"}},
    }


HOSTILE = ["subprocess:run", "os:system", "builtins:eval", "dotted"]


def payload(tmp_path: Path, source_config: dict[str, Any] | None = None, target_config: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = tmp_path / "raw.parquet"
    if not raw.exists():
        pl.DataFrame({"value": [1, 2]}).write_parquet(raw)
    return {
        "protocol": 1,
        "run_id": "hostile",
        "step": "double_value",
        "attempt": 1,
        "task": {"module": "glacier.testing.tasks", "qualname": "double_value", "file": None},
        "sources": {"df": {"uri": f"file://{raw}", "config": source_config}},
        "target": {"uri": f"file://{tmp_path}/out.parquet", "config": target_config},
    }


def assert_refused(result: dict[str, Any], type_name: str, marker: Path) -> None:
    assert result["ok"] is False, result
    message = result["error"]["message"]
    assert "Step 'double_value' failed" in message
    assert f"config type {type_name!r}" in message and "not a config class of an installed Glacier plugin" in message, message
    assert "Hint:" in message
    assert not marker.exists(), "the payload ran code"


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("where", ["source", "target"])
def test_a_worker_refuses_a_config_type_no_plugin_contributes(tmp_path: Path, name: str, where: str) -> None:
    marker = tmp_path / "pwned"
    config = hostile_configs(marker)[name]
    data = payload(tmp_path, config if where == "source" else None, config if where == "target" else None)
    result = run_payload(data, timeout=120, step="double_value")
    assert_refused(result, config["type"], marker)
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("name", HOSTILE)
def test_handle_refuses_a_config_type_no_plugin_contributes(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    config = hostile_configs(marker)[name]
    assert_refused(handle(payload(tmp_path, config)), config["type"], marker)


def test_a_config_of_an_installed_plugin_still_crosses_the_process_boundary(tmp_path: Path) -> None:
    from glacier.config import LocalConfig

    data = payload(tmp_path, config_to_dict(LocalConfig(root=str(tmp_path))), config_to_dict(LocalConfig(root=str(tmp_path))))
    result = run_payload(data, timeout=120, step="double_value")
    assert result["ok"], result
    assert pl.read_parquet(tmp_path / "out.parquet")["doubled"].to_list() == [2, 4]
    assert config_from_dict(config_to_dict(LocalConfig(root=str(tmp_path)))) == LocalConfig(root=str(tmp_path))


def test_config_fields_must_be_a_mapping(tmp_path: Path) -> None:
    from glacier.config import LocalConfig

    bad = {"type": config_to_dict(LocalConfig(root="/x"))["type"], "fields": ["/x"]}  # type: ignore[index]
    result = handle(payload(tmp_path, bad))
    assert result["ok"] is False
    assert "fields" in result["error"]["message"]
