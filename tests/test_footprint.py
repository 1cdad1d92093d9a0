"""The session's footprint check finds a file written, rewritten or hidden deep down, and skips only what it is told."""

from __future__ import annotations

import os
from pathlib import Path

import footprint


def test_a_new_a_rewritten_and_a_deep_file_are_found_and_skipped_folders_are_not(tmp_path: Path) -> None:
    (tmp_path / "kept.txt").write_text("same")
    (tmp_path / "rewritten.txt").write_text("old")
    (tmp_path / "tool" / "env").mkdir(parents=True)
    before = footprint.snapshot(tmp_path, skip=["tool/env"])

    (tmp_path / "rewritten.txt").write_text("new!")
    os.utime(tmp_path / "rewritten.txt", ns=(1, 1))  # even with its time set back
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.json").write_text("{}")
    (tmp_path / "tool" / "env" / "allowed.bin").write_bytes(b"x")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "m.pyc").write_bytes(b"x")

    after = footprint.snapshot(tmp_path, skip=["tool/env"])
    assert footprint.changes(before, after) == ["a/b/deep.json", "rewritten.txt"]


def test_the_report_folds_a_folder_of_many_files_into_one_line(tmp_path: Path) -> None:
    many = [f".npm/_cacache/{i:02}/entry" for i in range(5)]
    assert footprint.summary(tmp_path, [*many, "infra/main.tf"]) == [f"{tmp_path}/.npm/_cacache/... (5 files)", f"{tmp_path}/infra/main.tf"]
