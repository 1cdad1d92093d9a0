"""The Cloud Functions handler, called in this process with Flask requests: it answers every body with a result and status 200."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Request
from werkzeug.test import EnvironBuilder

from glacier_gcp.handler import handler


def raw_request(data: bytes, content_type: str) -> Any:
    return Request(EnvironBuilder(method="POST", data=data, content_type=content_type).get_environ())


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(b"not json at all", "text/plain"), (b"{", "application/json"), (b"", "application/json"), (b"\xff\xfe", "application/octet-stream")],
    ids=["text", "broken-json", "empty", "bytes"],
)
def test_a_body_that_is_no_payload_is_refused_as_data(monkeypatch: pytest.MonkeyPatch, data: bytes, content_type: str) -> None:
    monkeypatch.setenv("GLACIER_TASK", "glacier.testing.tasks:double_value")
    body, status, headers = handler(raw_request(data, content_type))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["ok"] is False and body["error"]["message"]


def test_a_function_without_its_pinned_task_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLACIER_TASK", raising=False)
    body, status, _ = handler(raw_request(b'{"step": "double_value"}', "application/json"))
    assert status == 200 and body["ok"] is False
    assert "GLACIER_TASK" in body["error"]["message"]
