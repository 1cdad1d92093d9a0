"""Executors: where a task runs. ``@executor.task()`` binds a function to one.

Every executor speaks one protocol, :mod:`glacier.run.protocol`: a JSON payload (run id,
task reference, source and target buckets) in, a JSON result (rows, bytes, seconds, or
a structured error) out. The in-process executor skips the JSON and calls the step
directly; a worker process, a Lambda function or a Cloud Function receives the JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, overload

from glacier.task import Task

if TYPE_CHECKING:
    from glacier.dag import TaskInstance
    from glacier.plugins.payload import StepOutcome
    from glacier.provider import Provider

__all__ = ['Executor']


class Executor:
    """Base class of every executor (the seed's ``ExecutionResource``).

    Subclasses set :attr:`kind` and implement :meth:`invoke`; serverless executors
    also set :attr:`runs_here` to ``False`` so that ``mode="local"`` runs their tasks
    on this machine instead.

    Parameters
    ----------
    provider
        The provider that made it.
    config
        The executor's settings (e.g. a ``LambdaConfig``), if any.
    """

    #: Short name shown in graphs and summaries (``"local"``, ``"lambda"``...).
    kind: ClassVar[str] = "executor"
    #: Whether :meth:`invoke` runs on this machine (so ``mode="local"`` may use it).
    runs_here: ClassVar[bool] = True
    #: Whether cloud mode must find this executor's functions in a deployment manifest.
    needs_deployment: ClassVar[bool] = False

    def __init__(self, provider: Provider, config: Any | None = None) -> None:
        self.provider = provider
        self.config = config

    @property
    def type(self) -> str:
        """The executor's kind, as the seed's Mermaid output names it."""
        return self.kind

    @overload
    def task(self, func: Callable[..., Any], /) -> Task: ...

    @overload
    def task(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        timeout: float | None = None,
        retries: int = 0,
        cache: bool = False,
        **config: Any,
    ) -> Callable[[Callable[..., Any]], Task]: ...

    def task(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        timeout: float | None = None,
        retries: int = 0,
        cache: bool = False,
        **config: Any,
    ) -> Task | Callable[[Callable[..., Any]], Task]:
        """Decorator that makes a :class:`~glacier.task.Task` bound to this executor.

        Works with and without parentheses.

        Parameters
        ----------
        name
            The task's name (default: the function's name).
        timeout
            Seconds an attempt may run before it is stopped.
        retries
            How many times a failed attempt is tried again.
        cache
            Skip the step when its inputs and code are unchanged.
        **config
            Extra settings kept with the task (and in its fingerprint).

        Examples
        --------
        >>> from glacier import Provider
        >>> from glacier.config import LocalConfig
        >>> local = Provider(config=LocalConfig(root="/tmp/glacier-doc")).local()
        >>> @local.task
        ... def keep(df):
        ...     return df
        >>> @local.task(name="clean", retries=2, timeout=60, cache=True)
        ... def drop_nulls(df):
        ...     return df.drop_nulls()
        >>> keep.name, drop_nulls.name, drop_nulls.retries
        ('keep', 'clean', 2)
        """

        def decorator(f: Callable[..., Any]) -> Task:
            return Task(
                func=f,
                executor=self,
                name=name or f.__name__,
                timeout=timeout,
                retries=retries,
                cache=cache,
                config=config,
            )

        return decorator if func is None else decorator(func)

    def run(self, instance: TaskInstance, run_id: str, attempt: int = 1, **context: Any) -> StepOutcome:
        """Run one step here or remotely and return its outcome (raises a StepError on failure).

        ``context`` carries what the runner knows, e.g. ``deployment`` (the manifest
        that ``mode="generate"`` wrote) in cloud mode.
        """
        from glacier.plugins.payload import build_payload, outcome_from_result

        payload = build_payload(instance, run_id, attempt)
        return outcome_from_result(self.invoke(payload), instance.name)

    def invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one payload to where this executor runs and return the result dict."""
        raise NotImplementedError

    def problems(self, instance: TaskInstance) -> list[str]:
        """Limits of this executor that the step breaks, for ``mode="analyze"`` (none by default)."""
        return []


    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider.name!r})"


