"""Running one step: read the sources, call the task, write the target atomically.

This is the one code path every executor uses: the in-process executor calls it
directly, a worker process and a serverless handler call it through
:func:`glacier.run.protocol.handle`. So a step fails the same way wherever it runs.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from glacier.errors import (
    SourceNotFoundError,
    SourceReadError,
    StepError,
    TargetWriteError,
    TaskFailedError,
    TaskOutputError,
    brief,
)
from glacier.plugins.payload import StepOutcome
from glacier.plugins.storage import is_glob
from glacier.task import call_task

if TYPE_CHECKING:
    import polars as pl

    from glacier.bucket import Bucket

__all__ = ['execute_step', 'read_source']


def read_source(step: str, bucket: Bucket) -> pl.LazyFrame:
    """A lazy scan of one source, with its schema read, or a clear error naming the URI.

    Raises
    ------
    SourceNotFoundError
        When nothing exists at the source's URI.
    SourceReadError
        When the source is not readable parquet.
    """
    storage = bucket.storage
    try:
        frame = storage.scan(bucket.uri)
        frame.collect_schema()  # reads the parquet footer only: fails here, not mid-write
    except StepError:
        raise
    except Exception as exc:
        # Only a failure asks whether the source exists: the common path makes no
        # extra metadata request per source.
        if not storage.exists(bucket.uri):
            raise SourceNotFoundError(step, "the source does not exist", uri=bucket.uri) from None
        raise SourceReadError(step, f"the source cannot be read as parquet ({brief(exc)})", uri=bucket.uri) from exc
    return frame


def execute_step(
    step: str,
    func: Callable[..., Any],
    sources: Mapping[str, Bucket],
    target: Bucket,
) -> StepOutcome:
    """Run one step end to end and return what it wrote.

    A one-source task gets its LazyFrame as its one argument; a multi-source task gets
    one LazyFrame per parameter name. The task may return a LazyFrame (streamed to the
    target with ``sink_parquet``) or a DataFrame. The target is written atomically.

    Raises
    ------
    StepError
        A subclass naming the step, the URI and the fix for each way a step fails.
    """
    import polars as pl

    started = time.perf_counter()
    frames = {param: read_source(step, bucket) for param, bucket in sources.items()}
    try:
        result = call_task(func, frames)
    except StepError:
        raise
    except Exception as exc:
        _raise_if_glob_schemas_differ(step, sources, exc)
        err = TaskFailedError(
            step,
            f"the task raised {type(exc).__name__}: {exc}",
            hint="fix the task's code (the traceback is attached as error.traceback)",
        )
        err.traceback = traceback.format_exc()
        raise err from exc
    if isinstance(result, pl.DataFrame):
        rows: int | None = result.height
    elif isinstance(result, pl.LazyFrame):
        rows = None
        _check_plan(step, result, sources)
    else:
        raise _output_error(step, result, target.uri)
    storage = target.storage
    try:
        storage.write(result, target.uri)
    except Exception as exc:
        _raise_if_glob_schemas_differ(step, sources, exc)
        raise TargetWriteError(
            step,
            f"writing the result failed ({brief(exc)}); the target was left as it was",
            uri=target.uri,
            hint="check the task's query and that the target's location is writable",
        ) from exc
    if rows is None:
        rows = storage.count_rows(target.uri)
    info = storage.info(target.uri)  # one metadata read gives both size and identity
    return StepOutcome(
        rows=rows, bytes=int(info.get("size") or 0), seconds=time.perf_counter() - started, fingerprint=storage.fingerprint_of(info)
    )


def _check_plan(step: str, frame: pl.LazyFrame, sources: Mapping[str, Bucket]) -> None:
    # Resolving the schema plans the query without running it: a column the source
    # lacks, or a type it does not have, is reported against the source here.
    try:
        frame.collect_schema()
    except Exception as exc:
        _raise_if_glob_schemas_differ(step, sources, exc)
        uris = ", ".join(b.uri for b in sources.values())
        raise SourceReadError(
            step,
            f"the task's query does not fit its source's schema ({brief(exc)})",
            uri=uris,
            hint="check the source has the columns and types the task expects",
        ) from exc


#: Frames of other libraries a task may return by mistake, and the polars call that converts each.
_CONVERSIONS: Mapping[str, str] = {
    "pandas": "pl.from_pandas(df)",
    "pyarrow": "pl.from_arrow(table)",
    "numpy": "pl.from_numpy(array)",
}


def _output_error(step: str, result: Any, uri: str) -> TaskOutputError:
    # Told apart by the class's module, so that recognizing a pandas frame needs no pandas.
    kind = type(result)
    library = kind.__module__.partition(".")[0]
    if library in _CONVERSIONS:
        return TaskOutputError(
            step,
            f"the task returned a {library} {kind.__name__}, not a polars LazyFrame or DataFrame",
            uri=uri,
            hint=f"return {_CONVERSIONS[library]} instead, or better, work on the LazyFrame the task is given (it streams)",
        )
    return TaskOutputError(step, f"the task returned {kind.__name__}, not a polars LazyFrame or DataFrame", uri=uri)


def _raise_if_glob_schemas_differ(step: str, sources: Mapping[str, Bucket], exc: Exception) -> None:
    """Raise a :class:`SourceReadError` naming the files when a glob's files disagree on schema.

    polars reads a glob with its first file's schema, so a file with other columns or
    types fails the query (often only while the target is written). Only a failure
    that looks like that pays for reading the footer of every matched file.
    """
    import polars as pl

    if not isinstance(exc, (pl.exceptions.SchemaError, pl.exceptions.ColumnNotFoundError, pl.exceptions.SchemaFieldNotFoundError)):
        return
    for bucket in sources.values():
        if not is_glob(bucket.uri):
            continue
        try:
            differences = _glob_schema_differences(bucket)
        except Exception:  # the diagnosis is a courtesy: the original error stands
            continue
        if differences:
            raise SourceReadError(
                step,
                f"the files this glob matches do not share one schema ({'; '.join(differences)})",
                uri=bucket.uri,
                hint="polars reads a glob with its first file's schema: rewrite the odd files with the same"
                " columns and types, or narrow the glob to files of one schema",
            ) from exc


def _glob_schema_differences(bucket: Bucket) -> list[str]:
    """One ``column 'x': Float64 in a.parquet, String in b.parquet`` per column the files disagree on."""
    storage = bucket.storage
    pattern = storage.path(bucket.uri)
    folder = pattern[: min(pattern.find(c) for c in "*?[" if c in pattern)].rpartition("/")[0] + "/"
    schemas: dict[str, dict[str, str]] = {}
    for path in sorted(storage.fs.glob(pattern)):
        found = storage.scan(storage.fs.unstrip_protocol(path)).collect_schema()
        schemas[path.removeprefix(folder)] = {name: str(dtype) for name, dtype in found.items()}
    columns = list(dict.fromkeys(name for types in schemas.values() for name in types))
    differences = []
    for column in columns:
        variants: dict[str, list[str]] = {}
        for file, types in schemas.items():
            variants.setdefault(types.get(column, ""), []).append(file)
        if len(variants) > 1:
            described = [
                f"{dtype + ' in' if dtype else 'missing from'} {names[0]}" + (f" (and {len(names) - 1} more)" if len(names) > 1 else "")
                for dtype, names in variants.items()
            ]
            differences.append(f"column {column!r}: {', '.join(described)}")
    return differences

