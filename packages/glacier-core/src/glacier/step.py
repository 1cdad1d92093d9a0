"""Running one step: read the sources, call the task, write the target atomically.

This is the one code path every executor uses: the in-process executor calls it
directly, a worker process and a serverless handler call it through
:func:`glacier.protocol.handle`. So a step fails the same way wherever it runs.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from glacier.errors import (
    SourceNotFoundError,
    SourceReadError,
    StepError,
    TargetWriteError,
    TaskFailedError,
    TaskOutputError,
)

if TYPE_CHECKING:
    import polars as pl

    from glacier.bucket import Bucket

__all__ = ["StepOutcome", "execute_step", "read_source"]


@dataclass(frozen=True)
class StepOutcome:
    """What a successful step wrote: rows, bytes, how long it took, and the target's fingerprint."""

    rows: int
    bytes: int
    seconds: float
    fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready data."""
        return asdict(self)


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
        raise SourceReadError(step, f"the source cannot be read as parquet ({_brief(exc)})", uri=bucket.uri) from exc
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
        result = func(*frames.values()) if len(frames) == 1 else func(**frames)
    except StepError:
        raise
    except Exception as exc:
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
        raise TaskOutputError(
            step, f"the task returned {type(result).__name__}, not a polars LazyFrame or DataFrame", uri=target.uri
        )
    storage = target.storage
    try:
        storage.write(result, target.uri)
    except Exception as exc:
        raise TargetWriteError(
            step,
            f"writing the result failed ({_brief(exc)}); the target was left as it was",
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
        uris = ", ".join(b.uri for b in sources.values())
        raise SourceReadError(
            step,
            f"the task's query does not fit its source's schema ({_brief(exc)})",
            uri=uris,
            hint="check the source has the columns and types the task expects",
        ) from exc


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"
