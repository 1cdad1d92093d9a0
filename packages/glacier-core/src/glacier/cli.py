"""The ``glacier`` command.

``glacier run FILE[:PIPELINE]`` runs a pipeline with a live progress display and a
summary table (exit status 1 when a step fails, 130 when interrupted by Ctrl-C);
``glacier analyze`` prints its plan from metadata alone; ``glacier graph`` prints its
Mermaid graph; ``glacier plugins`` lists what the installed plugins add;
``glacier runs`` lists run records; ``glacier generate`` writes infrastructure code.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from glacier.pipeline import Pipeline

__all__ = ["main", "load_pipeline"]


class UsageError(Exception):
    """A command-line mistake: shown without a traceback, exit status 2."""


def load_pipeline(spec: str) -> Pipeline:
    """The pipeline named by ``FILE[:PIPELINE]`` (a variable name or a pipeline's ``name``).

    The file is imported as a module named after it, with its folder on ``sys.path``,
    so worker processes import the same tasks by name. Its ``if __name__ ==
    "__main__":`` block does not run.
    """
    from glacier.pipeline import Pipeline

    file, _, wanted = spec.partition(":") if not re.match(r"^[A-Za-z]:\\", spec) else (spec, "", "")
    path = Path(file).resolve()
    if not path.is_file():
        msg = f"No such pipeline file: {file}"
        raise UsageError(msg)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = path.stem if path.stem.isidentifier() else re.sub(r"\W", "_", path.stem)
    spec_obj = importlib.util.spec_from_file_location(module_name, path)
    assert spec_obj is not None and spec_obj.loader is not None
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[module_name] = module
    spec_obj.loader.exec_module(module)
    found = {attr: value for attr, value in vars(module).items() if isinstance(value, Pipeline)}
    if wanted:
        for attr, value in found.items():
            if wanted in (attr, value.name):
                return value
        msg = f"{file} has no pipeline {wanted!r}; it defines: {', '.join(found) or 'none'}"
        raise UsageError(msg)
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        msg = f"{file} defines no Pipeline at module level"
        raise UsageError(msg)
    msg = f"{file} defines several pipelines ({', '.join(found)}); choose one: {file}:NAME"
    raise UsageError(msg)


# -- commands ------------------------------------------------------------------------


#: The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from glacier.errors import RunInterrupted
    from glacier.plugins.registry import get_plugin_manager
    from glacier.progress import ProgressDisplay, summary_table

    pipeline = load_pipeline(args.pipeline)
    options: dict[str, Any] = {"fail_fast": args.fail_fast}
    if args.resume:
        options["resume"] = True
    if args.max_workers:
        options["max_workers"] = args.max_workers
    if args.state_dir:
        options["state_dir"] = args.state_dir
    if args.manifest:
        options["manifest"] = args.manifest
    pm = get_plugin_manager()
    display = ProgressDisplay(console)
    pm.register(display, name="glacier.cli.progress")
    try:
        result = pipeline.run(mode=args.mode, **options)
    except RunInterrupted as stop:
        display.close()
        again = ["glacier run", args.pipeline, *_run_options(args), "--resume"]
        _interrupted(
            f"run {stop.run_id} of {stop.pipeline!r} stopped; {stop.steps_in_flight(exiting=True)}; {' '.join(again)} continues"
        )
        return INTERRUPTED
    finally:
        display.close()
        pm.unregister(name="glacier.cli.progress")
    console.print(summary_table(result))
    for step in result.failed:
        console.print(f"[bold red]{step.name}[/]: {step.error}", highlight=False)
    if result.note:
        console.print(result.note)
    return 0 if result.ok else 1


def _run_options(args: argparse.Namespace) -> list[str]:
    """The options of ``glacier run`` that a resumed run must repeat."""
    found = []
    if args.mode != "local":
        found += ["--mode", args.mode]
    for flag, value in (("--state-dir", args.state_dir), ("--manifest", args.manifest), ("--max-workers", args.max_workers)):
        if value:
            found += [flag, str(value)]
    if args.fail_fast:
        found.append("--fail-fast")
    return found


def _interrupted(what: str) -> None:
    """Say in one line on stderr that Ctrl-C stopped the command, and end it.

    A step running in one of this process's threads cannot be stopped and would keep
    the interpreter from exiting (and could still commit its target): in that case the
    process ends here, at once, with the run already recorded.
    """
    print(f"interrupted: {what}", file=sys.stderr, flush=True)
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        os._exit(INTERRUPTED)


def _cmd_analyze(args: argparse.Namespace, console: Console) -> int:
    import json

    analysis = load_pipeline(args.pipeline).run(mode="analyze")
    if args.json:
        print(json.dumps(analysis.to_dict(), indent=2))
    else:
        print(analysis)
    return 0 if analysis.ok else 1


def _cmd_runs(args: argparse.Namespace, console: Console) -> int:
    import json
    from datetime import datetime

    from rich.table import Table

    from glacier.run.history import RunStore

    store = RunStore(args.state_dir)
    if args.action == "show":
        if not args.run_id:
            raise UsageError("glacier runs show needs a RUN_ID (see glacier runs)")
        try:
            record = store.load(args.run_id)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        if args.json:
            print(json.dumps(record, indent=2))
            return 0
        table = Table(title=f"{record['pipeline']} · run {record['run_id']} · {record.get('state')}", title_justify="left")
        for column in ("step", "status", "attempts", "rows", "bytes", "seconds", "error"):
            table.add_column(column)
        for step in record.get("steps", []):
            error = (step.get("error") or {}).get("message", "")
            table.add_row(step["name"], step["status"], str(step["attempts"]), str(step.get("rows") or "-"), str(step.get("bytes") or "-"), f"{step.get('seconds', 0):.2f}", error.splitlines()[0] if error else "")
        for name in record.get("pending", []):
            table.add_row(name, "never ran", "0", "-", "-", "", "")
        console.print(table)
        return 0
    records = store.list(args.pipeline)
    if not records:
        console.print(f"No runs recorded in {store.root}")
        return 0
    table = Table(title=f"Runs in {store.root}", title_justify="left")
    for column in ("run id", "pipeline", "mode", "started", "seconds", "result", "steps"):
        table.add_column(column)
    for record in records[-args.limit :]:
        statuses: dict[str, int] = {}
        for step in record.get("steps", []):
            statuses[step["status"]] = statuses.get(step["status"], 0) + 1
        finished = record.get("finished")
        state = record.get("state")
        verdict = state if state in ("running", "interrupted") else ("ok" if record.get("ok") else "failed")
        table.add_row(
            record["run_id"],
            record["pipeline"],
            record.get("mode", ""),
            datetime.fromtimestamp(record["started"]).strftime("%Y-%m-%d %H:%M:%S"),
            f"{finished - record['started']:.2f}" if finished else "",
            verdict,
            ", ".join(f"{n} {s}" for s, n in statuses.items()),
        )
    console.print(table)
    return 0


def _cmd_generate(args: argparse.Namespace, console: Console) -> int:
    pipeline = load_pipeline(args.pipeline)
    result = pipeline.run(mode="generate", out=args.out)
    if result.nothing_to_deploy:
        console.print(
            f"Nothing to deploy: every step of pipeline {pipeline.name!r} runs on this machine and every bucket is local, "
            f"so no infrastructure was generated and nothing was written. glacier run {args.pipeline} runs it."
        )
        return 0
    console.print(f"Generated infrastructure for {', '.join(result.providers)} in {result.out}")
    for file in result.files:
        console.print(f"  {file.relative_to(result.out)}")
    if result.manifest.get("functions"):
        console.print(f"Next: terraform -chdir={result.out} init && terraform -chdir={result.out} apply, then glacier run {args.pipeline} --mode cloud")
    return 0


def _cmd_graph(args: argparse.Namespace, console: Console) -> int:
    import warnings

    pipeline = load_pipeline(args.pipeline)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = pipeline.visualize()
    print(text)
    for warning in caught:  # on stderr, so that stdout stays a graph to pipe into a file
        print(f"warning: {warning.message}", file=sys.stderr)
    return 0


def _cmd_plugins(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from glacier.plugins.registry import plugin_report

    table = Table(title="Glacier plugins")
    for column in ("plugin", "distribution", "schemes", "executors", "configs", "codegen"):
        table.add_column(column, no_wrap=column == "plugin")  # a dotted name is read whole
    for info in plugin_report():
        table.add_row(
            info.name,
            info.distribution or "(built in)",
            ", ".join(info.schemes),
            ", ".join(info.executors),
            ", ".join(info.configs),
            ", ".join(info.codegen),
        )
    console.print(table)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glacier", description="Storage-first polars pipelines.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a pipeline with a live progress display")
    run.add_argument("pipeline", metavar="FILE[:PIPELINE]")
    run.add_argument("--mode", choices=("local", "cloud"), default="local")
    run.add_argument("--resume", action="store_true", help="re-run only what failed or never ran last time")
    run.add_argument("--fail-fast", action="store_true", help="stop everything at the first failure")
    run.add_argument("--max-workers", type=int, default=None, help="steps that may run at once")
    run.add_argument("--state-dir", default=None, help="where run records go (default: $GLACIER_STATE_DIR or .glacier)")
    run.add_argument("--manifest", default=None, help="cloud mode: the deployment manifest generate wrote")
    run.set_defaults(func=_cmd_run)

    runs = sub.add_parser("runs", help="list recorded runs, or show one")
    runs.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    runs.add_argument("run_id", nargs="?", metavar="RUN_ID", help="with show: the run (a unique prefix is enough)")
    runs.add_argument("--pipeline", default=None, help="only this pipeline's runs")
    runs.add_argument("--limit", type=int, default=20, help="how many of the latest runs to list")
    runs.add_argument("--json", action="store_true", help="with show: print the raw record")
    runs.add_argument("--state-dir", default=None, help="where run records are (default: $GLACIER_STATE_DIR or .glacier)")
    runs.set_defaults(func=_cmd_runs)

    analyze = sub.add_parser("analyze", help="print the pipeline's plan: waves, schemas, transfers, cross-cloud egress, broken limits")
    analyze.add_argument("pipeline", metavar="FILE[:PIPELINE]")
    analyze.add_argument("--json", action="store_true", help="print the analysis as JSON")
    analyze.set_defaults(func=_cmd_analyze)

    generate = sub.add_parser("generate", help="write Terraform and function artifacts for the pipeline")
    generate.add_argument("pipeline", metavar="FILE[:PIPELINE]")
    generate.add_argument("--out", default="infra", help="output directory (default: infra)")
    generate.set_defaults(func=_cmd_generate)

    graph = sub.add_parser("graph", help="print the pipeline's Mermaid graph")
    graph.add_argument("pipeline", metavar="FILE[:PIPELINE]")
    graph.set_defaults(func=_cmd_graph)

    plugins = sub.add_parser("plugins", help="list the installed plugins and what they add")
    plugins.set_defaults(func=_cmd_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``glacier`` command; returns the exit status."""
    from rich.console import Console

    from glacier.errors import GlacierError

    args = _build_parser().parse_args(argv)
    console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else max(120, _columns()))
    try:
        return int(args.func(args, console))
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run says more, in _cmd_run)
        _interrupted(f"glacier {args.command} stopped")
        return INTERRUPTED
    except BrokenPipeError:  # `glacier analyze --json | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except UsageError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 2
    except GlacierError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1


def _columns() -> int:
    # shutil's, not os's: it honours COLUMNS, the standard way to size output that is piped.
    import shutil

    return shutil.get_terminal_size(fallback=(120, 24)).columns


if __name__ == "__main__":
    raise SystemExit(main())
