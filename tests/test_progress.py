"""The live progress display, rendered through rich's recording console.

The display is what a person watches on a long run: every step starts as waiting, a
running step shows its attempt, and the table ends with each step's final status.
The tests render it at those moments, from inside the running tasks, and read the
text a terminal would show.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from glacier import Pipeline, Provider
from glacier.config import LocalConfig
from glacier.plugins.registry import get_plugin_manager
from glacier.progress import ProgressDisplay, summary_table


def rendered(renderable: object) -> str:
    """What a 120-column terminal shows for ``renderable``, as plain text."""
    console = Console(record=True, width=120, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def row(text: str, step: str) -> list[str]:
    """The cells of ``step``'s row in a rendered table."""
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] == step:
            return cells
    raise AssertionError(f"no row for {step!r} in:\n{text}")


@pytest.fixture
def live() -> Iterator[tuple[ProgressDisplay, Console]]:
    """A display registered for one run, on a console that records what it printed."""
    console = Console(record=True, width=120, file=io.StringIO(), color_system=None)
    display = ProgressDisplay(console)
    pm = get_plugin_manager()
    pm.register(display, name="test.progress")
    try:
        yield display, console
    finally:
        display.close()
        pm.unregister(name="test.progress")


def test_the_display_shows_waiting_running_with_its_attempt_and_the_final_states(tmp_path: Path, live: tuple[ProgressDisplay, Console]) -> None:
    display, console = live
    provider = Provider(config=LocalConfig(root=str(tmp_path)))
    local = provider.local()
    raw = provider.bucket(bucket="lake", path="raw.parquet")
    (tmp_path / "lake").mkdir()
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(tmp_path / "lake" / "raw.parquet")
    seen: dict[str, str] = {}
    calls = {"flaky": 0}

    @local.task(retries=1)
    def flaky(df: pl.LazyFrame) -> pl.LazyFrame:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("the first attempt fails")
        seen["second attempt"] = rendered(display)
        return df

    @local.task()
    def report(df: pl.LazyFrame) -> pl.LazyFrame:
        return df

    @local.task()
    def broken(df: pl.LazyFrame) -> pl.LazyFrame:
        raise ValueError("no good")

    chain = Pipeline(name="watched").source(raw).transform(flaky).to(provider.bucket(bucket="lake", path="mid.parquet"))
    chain = chain.transform(report).to(provider.bucket(bucket="lake", path="out.parquet"))
    side = Pipeline(name="side").source(raw).transform(broken).to(provider.bucket(bucket="lake", path="bad.parquet"))
    result = Pipeline.compose(chain, side, name="watched").run(max_workers=1)

    # While flaky's second attempt ran: it is running, on attempt 2, and report waits for it.
    during = seen["second attempt"]
    status, attempt = row(during, "flaky")[2:4]
    assert status.endswith(" running") and attempt == "2", during  # a spinner frame, then the state
    assert row(during, "report")[2] == "waiting", during
    assert "watched · run " in during

    # The first failure was announced with the retry, on the live console.
    printed = console.export_text()
    assert "flaky: attempt 1 failed, retrying: " in printed and "the first attempt fails" in printed

    # At the end every row holds its final status, attempts and rows.
    after = rendered(display)
    assert row(after, "flaky")[1:5] == ["local", "succeeded", "2", "3"], after
    assert row(after, "report")[2:5] == ["succeeded", "1", "3"], after
    assert row(after, "broken")[2] == "failed", after
    assert not result.ok

    summary = rendered(summary_table(result))
    assert row(summary, "broken")[2:4] == ["failed", "1"], summary
    assert "failed (1 step(s))" in summary
