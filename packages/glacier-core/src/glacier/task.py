"""Tasks: the user's transform functions, bound to where they run."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glacier.plugins.executor import Executor

__all__ = ["Task", "TaskRef", "call_task"]


def call_task(func: Callable[..., Any], frames: Mapping[str, Any]) -> Any:
    """Call a task with its sources' frames, the way every step and analysis does.

    A one-source task gets its frame as its one argument, whatever the parameter is
    called; a task of several sources (``.sources({...})``) gets each frame by its
    parameter name.

    Examples
    --------
    >>> call_task(lambda df: df, {"raw": 1})
    1
    >>> call_task(lambda sales, customers: sales - customers, {"customers": 1, "sales": 3})
    2
    """
    return func(*frames.values()) if len(frames) == 1 else func(**frames)


@dataclass(frozen=True)
class TaskRef:
    """Where a task's code lives, so another process can import it.

    Parameters
    ----------
    module
        The module's import name (``"examples.demo"``; ``"__main__"`` for a script).
    qualname
        The task's name in that module.
    file
        The module's file, used when the module cannot be imported by name.
    """

    module: str
    qualname: str
    file: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The reference as JSON-ready data."""
        return {"module": self.module, "qualname": self.qualname, "file": self.file}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRef:
        """Rebuild a reference from :meth:`to_dict`."""
        return cls(str(data["module"]), str(data["qualname"]), data.get("file"))


class Task:
    """A reusable transform, made by ``@executor.task()``.

    A task takes one ``pl.LazyFrame`` per source (by parameter name when the step has
    several sources) and returns a ``pl.LazyFrame`` (streamed to the target) or a
    ``pl.DataFrame``. Calling the task calls the function, for testing.

    Examples
    --------
    >>> import polars as pl
    >>> from glacier import Provider
    >>> from glacier.config import LocalConfig
    >>> local = Provider(config=LocalConfig(root="/tmp/glacier-doc")).local()
    >>> @local.task(retries=1)
    ... def double(df: pl.LazyFrame) -> pl.LazyFrame:
    ...     return df.with_columns(pl.col("value") * 2)
    >>> double(pl.LazyFrame({"value": [1, 2]})).collect()["value"].to_list()
    [2, 4]
    """

    def __init__(
        self,
        func: Callable[..., Any],
        executor: Executor,
        name: str,
        timeout: float | None = None,
        retries: int = 0,
        cache: bool = False,
        config: dict[str, Any] | None = None,
    ) -> None:
        if retries < 0:
            msg = f"Task {name!r}: retries must be 0 or more, got {retries}"
            raise ValueError(msg)
        if timeout is not None and timeout <= 0:
            msg = f"Task {name!r}: timeout must be a positive number of seconds, got {timeout}"
            raise ValueError(msg)
        self.func = func
        self.executor = executor
        self.name = name
        self.timeout = timeout
        self.retries = retries
        self.cache = cache
        self.config = config or {}
        self.signature = inspect.signature(func)
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    @property
    def parameters(self) -> list[str]:
        """The names of the function's parameters, in order."""
        return list(self.signature.parameters)

    @property
    def required_parameters(self) -> list[str]:
        """Parameters without a default: each needs a source."""
        return [
            p.name
            for p in self.signature.parameters.values()
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def reference(self) -> TaskRef:
        """Where this task's code lives, for a worker process or a serverless handler."""
        module = getattr(self.func, "__module__", "__main__") or "__main__"
        try:
            file: str | None = os.path.abspath(inspect.getfile(self.func))
        except TypeError:
            file = None
        return TaskRef(module, self.func.__qualname__, file)

    def __call__(self, *args: Any, **inputs: Any) -> Any:
        """Call the function directly (for tests)."""
        return self.func(*args, **inputs)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, executor={self.executor!r})"
