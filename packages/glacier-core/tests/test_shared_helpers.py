"""One helper for each thing several modules do: call a task, sum up an exception, bound a name."""

from __future__ import annotations

import ast
from pathlib import Path

import polars as pl
import pytest

import glacier
from glacier.errors import brief
from glacier.infra.naming import bounded_name, function_name
from glacier.task import call_task

ROOT = Path(glacier.__file__).parent


def _one(anything: pl.LazyFrame) -> str:
    return "one"


def _two(sales: pl.LazyFrame, customers: pl.LazyFrame) -> tuple[int, int]:
    return sales.collect_schema().len(), customers.collect_schema().len()


def test_a_one_source_task_gets_its_frame_whatever_its_parameter_is_named() -> None:
    assert call_task(_one, {"df": pl.LazyFrame({"a": [1]})}) == "one"


def test_a_multi_source_task_gets_each_frame_by_its_parameter_name() -> None:
    frames = {"customers": pl.LazyFrame({"a": [1]}), "sales": pl.LazyFrame({"a": [1], "b": [2]})}
    assert call_task(_two, frames) == (2, 1)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError("bad value\nsecond line"), "ValueError: bad value"),
        (RuntimeError(""), "RuntimeError: "),
        (OSError("  padded  \n"), "OSError: padded"),
    ],
    ids=["first-line", "empty", "stripped"],
)
def test_an_exception_is_summed_up_as_its_type_and_first_line(exc: BaseException, expected: str) -> None:
    assert brief(exc) == expected


@pytest.mark.parametrize("module", ["run/step.py", "analysis.py"])
def test_step_and_analysis_call_tasks_and_sum_up_errors_the_same_way(module: str) -> None:
    source = (ROOT / module).read_text()
    tree = ast.parse(source)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "call_task" in names and "brief" in names
    assert "frames.values()" not in source, "the calling convention lives in glacier.task.call_task"
    assert "splitlines()[0]" not in source and "def _brief" not in source, "the summary lives in glacier.errors.brief"


def test_a_name_that_fits_is_kept() -> None:
    assert bounded_name("glacier-etl-artifacts", 63) == "glacier-etl-artifacts"


def test_a_long_name_is_cut_to_its_limit_with_a_hash_that_keeps_names_apart() -> None:
    a, b = "x" * 70 + "-a", "x" * 70 + "-b"
    assert len(bounded_name(a, 64)) == 64 and len(bounded_name(b, 64)) == 64
    assert bounded_name(a, 64) != bounded_name(b, 64)
    assert bounded_name(a, 64).startswith("x" * 55)


def test_the_hash_can_stand_for_the_original_of_a_folded_name() -> None:
    # "Sales ETL" and "sales-etl" fold to one slug; hashing the originals keeps them apart.
    slug = "sales-etl-" + "y" * 60
    assert bounded_name(slug, 40, identity="Sales ETL" + "y" * 60) != bounded_name(slug, 40, identity="sales-etl" + "y" * 60)


def test_a_hyphen_is_not_left_before_the_hash() -> None:
    assert "--" not in bounded_name("a" * 54 + "-" + "b" * 20, 64)


def test_function_names_are_bounded_the_same_way() -> None:
    long = function_name("p" * 40, "t" * 40)
    assert long == bounded_name(f"{'p' * 40}-{'t' * 40}", 64)


def test_no_other_module_cuts_names_with_a_hash_of_its_own() -> None:
    sources = [ROOT.parent / "glacier"] + [p for p in (ROOT.parents[2] / "glacier-aws" / "src").glob("*") if p.is_dir()]
    offenders = [
        str(path)
        for source in sources
        for path in source.rglob("*.py")
        if "hexdigest()[:8]" in path.read_text() and path.name not in {"naming.py"} and not (path.name == "terraform.py" and path.parent.name == "infra" and path.parent.parent.name == "glacier")
    ]
    assert not offenders, offenders
