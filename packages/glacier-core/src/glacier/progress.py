"""The CLI's live progress display, itself a plugin of the lifecycle hooks."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from glacier.plugins.hookspecs import hookimpl
from glacier.result import RunResult, StepStatus

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from glacier.dag import TaskInstance
    from glacier.result import StepResult
    from glacier.plugins.context import RunContext

__all__ = ["ProgressDisplay", "summary_table"]

_STYLE = {
    StepStatus.SUCCEEDED: "green",
    StepStatus.CACHED: "cyan",
    StepStatus.REUSED: "cyan",
    StepStatus.FAILED: "bold red",
    StepStatus.TIMED_OUT: "bold red",
    StepStatus.SKIPPED: "yellow",
    StepStatus.CANCELLED: "yellow",
    StepStatus.INTERRUPTED: "yellow",
}


class ProgressDisplay:
    """A live table of the run's steps: waiting, running (with attempt), done, failed.

    Register it with the plugin manager for the length of a run; it listens to the
    lifecycle hooks, so it sees steps run in any executor.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {}
        self._live: Live | None = None
        self._title = ""

    @hookimpl
    def glacier_run_started(self, run: RunContext) -> None:
        """Show every step as waiting."""
        with self._lock:
            self._title = f"{run.pipeline} · run {run.run_id} · {run.mode}"
            self._rows = {s.name: {"state": "waiting", "attempt": 0, "started": None, "executor": s.task.executor.kind} for s in run.steps}
        self._live = Live(self, console=self.console, refresh_per_second=8, transient=True)
        self._live.start()

    @hookimpl
    def glacier_step_started(self, run: RunContext, step: TaskInstance, attempt: int) -> None:
        """Mark the step as running."""
        with self._lock:
            row = self._rows[step.name]
            row.update(state="running", attempt=attempt, started=row["started"] or time.monotonic())

    @hookimpl
    def glacier_step_failed(self, run: RunContext, step: TaskInstance, error: BaseException, attempt: int, will_retry: bool) -> None:
        """Say that an attempt failed and whether another follows."""
        if will_retry:
            with self._lock:
                self._rows[step.name]["state"] = "retrying"
            first = str(error).splitlines()[0]
            self.console.print(f"[yellow]{step.name}: attempt {attempt} failed, retrying[/]: {first}", highlight=False)

    @hookimpl
    def glacier_step_finished(self, run: RunContext, step: TaskInstance, result: StepResult) -> None:
        """Show the step's final status."""
        with self._lock:
            self._rows[step.name].update(state=result.status, result=result)

    @hookimpl
    def glacier_run_finished(self, run: RunContext, result: RunResult) -> None:
        """Stop the live display (the CLI prints the summary)."""
        self.close()

    def close(self) -> None:
        """Stop refreshing (safe to call twice)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __rich__(self) -> RenderableType:
        table = Table(title=self._title, title_justify="left", expand=False)
        for column in ("step", "executor", "status", "attempt", "rows", "seconds"):
            table.add_column(column)
        with self._lock:
            rows = list(self._rows.items())
        now = time.monotonic()
        for name, row in rows:
            state = row["state"]
            result = row.get("result")
            if isinstance(state, StepStatus):
                status: RenderableType = Text(state.value, style=_STYLE[state])
                rows_text = "-" if result is None or result.rows is None else f"{result.rows:,}"
                seconds = f"{result.seconds:.1f}" if result else ""
            elif state in ("running", "retrying"):
                status = Spinner("dots", text=Text(state, style="blue"))
                rows_text, seconds = "", f"{now - row['started']:.1f}"
            else:
                status, rows_text, seconds = Text("waiting", style="dim"), "", ""
            table.add_row(name, row["executor"], status, str(row["attempt"] or ""), rows_text, seconds)
        return table


def summary_table(result: RunResult) -> Table:
    """The end-of-run summary: one row per step, then the verdict in the caption."""
    verdict = "[green]succeeded[/]" if result.ok else f"[bold red]failed[/] ({len(result.failed)} step(s))"
    table = Table(title=f"{result.pipeline} · run {result.run_id}", caption=f"{verdict} in {result.seconds:.2f}s", title_justify="left")
    for column, justify in (("step", "left"), ("executor", "left"), ("status", "left"), ("attempts", "right"), ("rows", "right"), ("bytes", "right"), ("seconds", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for step in result.steps.values():
        table.add_row(
            step.name,
            step.executor,
            Text(step.status.value, style=_STYLE[step.status]),
            str(step.attempts),
            "-" if step.rows is None else f"{step.rows:,}",
            "-" if step.bytes is None else f"{step.bytes:,}",
            f"{step.seconds:.2f}",
        )
    return table
