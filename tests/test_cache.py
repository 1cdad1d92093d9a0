"""What a ``cache=True`` step's key covers: the code, and the values the code refers to.

A cached result is only right while everything the task's behaviour depends on is
unchanged: its source, the closure it was built with, the module-level values and
helper functions it uses. A value Glacier cannot fingerprint makes the step run.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import logging
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import polars as pl
import pytest
from local_buckets import read, write

from glacier import Pipeline, Provider, StepStatus
from glacier.run.cache import UnfingerprintableError, function_fingerprint

# -- whole runs -------------------------------------------------------------------------


def one_step(provider: Provider, func: Any, name: str = "filter_big") -> Pipeline:
    """``func`` as a cached step from ``in.parquet`` (v = 1, 2, 3) to ``out.parquet``."""
    task = provider.local().task(name=name, cache=True)(func)
    src = provider.bucket(bucket="lake", path="in.parquet")
    if not src.exists():
        write(src, pl.DataFrame({"v": [1, 2, 3]}))
    out = provider.bucket(bucket="lake", path="out.parquet")
    return Pipeline("one").source(src).transform(task).to(out)


def out_values(provider: Provider) -> list[int]:
    return read(provider.bucket(bucket="lake", path="out.parquet"))["v"].to_list()


def import_fresh(path: Path, code: str) -> ModuleType:
    """Write ``code`` to ``path`` and import it as a new module (as a new process would)."""
    path.write_text(textwrap.dedent(code))
    name = f"cached_tasks_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


PIPELINE = """
import os
import polars as pl
from glacier import Pipeline, Provider
from glacier.config import LocalConfig

provider = Provider(config=LocalConfig(root=os.environ["ROOT"]))
THRESHOLD = int(os.environ.get("THRESHOLD", "0"))


@provider.local().task(cache=True)
def filter_big(df):
    with open(os.environ["LOG"], "a") as f:
        f.write("filter_big\\n")
    return df.filter(pl.col("v") > THRESHOLD)


pipe = Pipeline("env").source(provider.bucket(bucket="lake", path="in.parquet")).transform(filter_big).to(
    provider.bucket(bucket="lake", path="out.parquet")
)
"""


def test_a_threshold_set_from_the_environment_is_part_of_the_key(tmp_path: Path) -> None:
    root, log, file = tmp_path / "data", tmp_path / "calls.log", tmp_path / "pipes.py"
    (root / "lake").mkdir(parents=True)
    pl.DataFrame({"v": [1, 2, 3]}).write_parquet(root / "lake" / "in.parquet")
    file.write_text(PIPELINE)

    def run(threshold: str) -> list[str]:
        env = dict(os.environ, ROOT=str(root), LOG=str(log), THRESHOLD=threshold)
        done = subprocess.run(
            [sys.executable, "-m", "glacier.cli", "run", f"{file}:pipe"], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
        calls = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return calls

    assert run("0") == ["filter_big"]
    assert run("0") == []  # unchanged, in a fresh process: still cached
    assert run("2") == ["filter_big"]
    assert pl.read_parquet(root / "lake" / "out.parquet")["v"].to_list() == [3]
    assert run("2") == []


def test_a_module_level_value_changed_between_runs_makes_the_step_run_again(provider: Provider, tmp_path: Path) -> None:
    module = import_fresh(
        tmp_path / "tasks.py",
        """
        import polars as pl

        LIMITS = {"v": 1}

        def filter_big(df):
            return df.filter(pl.col("v") > LIMITS["v"])
        """,
    )
    pipe = one_step(provider, module.filter_big)
    assert pipe.run()["filter_big"].status is StepStatus.SUCCEEDED
    assert pipe.run()["filter_big"].status is StepStatus.CACHED

    module.LIMITS = {"v": 2}

    assert pipe.run()["filter_big"].status is StepStatus.SUCCEEDED
    assert out_values(provider) == [3]
    assert pipe.run()["filter_big"].status is StepStatus.CACHED


def test_a_changed_helper_function_makes_the_step_run_again(provider: Provider, tmp_path: Path) -> None:
    code = """
        import polars as pl

        def cutoff():
            return {value}

        def filter_big(df):
            return df.filter(pl.col("v") > cutoff())
        """
    first = import_fresh(tmp_path / "tasks.py", code.format(value=1))
    assert one_step(provider, first.filter_big).run()["filter_big"].status is StepStatus.SUCCEEDED
    assert one_step(provider, first.filter_big).run()["filter_big"].status is StepStatus.CACHED

    edited = import_fresh(tmp_path / "tasks.py", code.format(value=2))  # the task itself is unchanged

    assert one_step(provider, edited.filter_big).run()["filter_big"].status is StepStatus.SUCCEEDED
    assert out_values(provider) == [3]


def make_filter(threshold: int) -> Any:
    def filter_big(df: pl.LazyFrame) -> pl.LazyFrame:
        return df.filter(pl.col("v") > threshold)

    return filter_big


def test_tasks_built_in_a_loop_are_told_apart_by_their_closure(provider: Provider) -> None:
    built = [make_filter(n) for n in (0, 1, 2)]
    assert len({function_fingerprint(f) for f in built}) == 3
    assert function_fingerprint(make_filter(1)) == function_fingerprint(make_filter(1))

    assert one_step(provider, make_filter(1)).run()["filter_big"].status is StepStatus.SUCCEEDED
    assert one_step(provider, make_filter(1)).run()["filter_big"].status is StepStatus.CACHED
    assert one_step(provider, make_filter(2)).run()["filter_big"].status is StepStatus.SUCCEEDED
    assert out_values(provider) == [3]


def test_a_value_glacier_cannot_fingerprint_makes_the_step_run_with_a_warning_naming_it(provider: Provider) -> None:
    conn = sqlite3.connect(":memory:", check_same_thread=False)

    def filter_big(df: pl.LazyFrame) -> pl.LazyFrame:
        (threshold,) = conn.execute("select 1").fetchone()
        return df.filter(pl.col("v") > threshold)

    pipe = one_step(provider, filter_big)
    for _ in range(2):
        with pytest.warns(UserWarning, match=r"task 'filter_big' refers to 'conn' \(a Connection\), which Glacier cannot fingerprint; the step will run each time"):
            assert pipe.run()["filter_big"].status is StepStatus.SUCCEEDED
    conn.close()


# -- what the fingerprint covers ------------------------------------------------------------


def uses(value: Any) -> Any:
    """A function (without source, as exec makes it) that refers to the global ``VALUE``."""
    namespace: dict[str, Any] = {"VALUE": value}
    exec("def task(df):\n    return df.head(len(str(VALUE)))\n", namespace)  # noqa: S102
    return namespace["task"]


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


@dataclasses.dataclass(frozen=True)
class Settings:
    limit: int
    columns: tuple[str, ...]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (1, 2),
        (1, 1.0),
        ("a", b"a"),
        (None, False),
        ((1, "x"), [1, "x"]),
        ({"a": [1, 2]}, {"a": [1, 3]}),
        (frozenset({1, 2}), frozenset({1, 3})),
        (Settings(1, ("a",)), Settings(1, ("b",))),
        (Mode.FAST, Mode.SLOW),
        (PurePosixPath("raw/a"), PurePosixPath("raw/b")),
        (re.compile("a+"), re.compile("a+", re.IGNORECASE)),
        (pl.Int64, pl.Int32),
        (pl.List(pl.Int64), pl.List(pl.Utf8)),
        (pl.col("v") > 1, pl.col("v") > 2),
        (pl.DataFrame({"k": [1, 2]}), pl.DataFrame({"k": [1, 3]})),
        (logging.getLogger("a"), logging.getLogger("b")),
        (pl, re),
    ],
    ids=lambda v: type(v).__name__,
)
def test_plain_values_a_task_refers_to_are_fingerprinted_by_their_content(before: Any, after: Any) -> None:
    assert function_fingerprint(uses(before)) == function_fingerprint(uses(before))
    assert function_fingerprint(uses(before)) != function_fingerprint(uses(after))


def test_the_task_s_own_code_and_defaults_are_in_the_fingerprint() -> None:
    namespace: dict[str, Any] = {}
    exec("def a(df, n=1):\n    return df.head(n + 1)\ndef b(df, n=1):\n    return df.head(n + 2)\n", namespace)  # noqa: S102
    exec("def c(df, n=2):\n    return df.head(n + 1)\n", namespace)  # noqa: S102
    fingerprints = {function_fingerprint(namespace[name]) for name in "abc"}
    assert len(fingerprints) == 3


@pytest.mark.parametrize(
    ("value", "described"),
    [
        ({"rule": lambda x: x}, "'VALUE' (a function inside a dict)"),
        (open(os.devnull), "'VALUE' (a TextIOWrapper)"),  # noqa: SIM115
        (object(), "'VALUE' (an object)"),
    ],
    ids=["lambda-in-a-dict", "open-file", "object"],
)
def test_a_value_that_cannot_be_fingerprinted_is_named(value: Any, described: str) -> None:
    with pytest.raises(UnfingerprintableError) as caught:
        function_fingerprint(uses(value))
    assert described in str(caught.value)


def test_a_value_reached_through_a_helper_is_named_with_the_helper(tmp_path: Path) -> None:
    module = import_fresh(
        tmp_path / "tasks.py",
        """
        import threading

        LOCK = threading.Lock()

        def helper():
            with LOCK:
                return 1

        def task(df):
            return df.head(helper())
        """,
    )
    with pytest.raises(UnfingerprintableError, match=r"'LOCK' \(a lock\) through 'helper'"):
        function_fingerprint(module.task)


def test_library_functions_and_modules_are_named_not_read() -> None:
    import json

    # A function from the standard library or an installed package counts by its
    # name: its globals (json's decoder objects, polars' internals) are not walked.
    assert function_fingerprint(uses(json.dumps)) != function_fingerprint(uses(json.loads))
    assert function_fingerprint(uses(pl.col)) == function_fingerprint(uses(pl.col))
