"""The exceptions Glacier raises.

Every error says what went wrong, where (the step and the URI) and how to fix it.
The context travels as attributes, so a caller (the CLI, a worker process, a
serverless handler) can report or re-raise it without parsing the message.
Messages follow polars' shape: the problem, a blank line, then the hint.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GlacierError",
    "PipelineDefinitionError",
    "PluginNotInstalledError",
    "UnknownSchemeError",
    "PluginConflictError",
    "StepError",
    "SourceNotFoundError",
    "SourceReadError",
    "TaskFailedError",
    "TaskOutputError",
    "TargetWriteError",
    "StepTimeoutError",
    "StorageUnreachableError",
    "RunInterrupted",
    "DeploymentNotFoundError",
    "IdentityError",
    "error_from_dict",
    "brief",
]


def brief(exc: BaseException) -> str:
    """An exception in one line: its type and the first line of its message.

    What a step's error or an analysis problem quotes of the polars or storage error
    behind it; the whole error stays attached as ``__cause__``.

    Examples
    --------
    >>> brief(ValueError("column 'x' not found\\n\\nResolved plan: ..."))
    "ValueError: column 'x' not found"
    """
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _message(what: str, hint: str | None) -> str:
    return f"{what}\n\nHint: {hint}" if hint else what


class GlacierError(Exception):
    """Base class of every error Glacier raises on purpose."""

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data, for the worker and handler protocol."""
        return {"type": type(self).__name__, "message": str(self)}


class PipelineDefinitionError(GlacierError, ValueError):
    """A pipeline is put together wrongly (the seed's ``ValueError``\\ s keep their wording)."""


class PluginNotInstalledError(GlacierError, ImportError):
    """A name or scheme belongs to a provider package that is not installed.

    Attributes
    ----------
    package
        The distribution to ``pip install``, when known.
    """

    def __init__(self, what: str, package: str | None) -> None:
        hint = f"pip install {package}" if package else "install the Glacier provider package that provides it"
        super().__init__(_message(what, hint))
        self.package = package


class UnknownSchemeError(GlacierError, ValueError):
    """No installed plugin handles a URI's scheme.

    Attributes
    ----------
    uri, scheme
        What was asked for.
    known
        The schemes that are available.
    """

    def __init__(self, uri: str, scheme: str, known: list[str], package: str | None, installed_by: list[str] | None = None) -> None:
        what = f"No installed Glacier plugin handles the URI scheme {scheme!r} (in {uri!r}).\nKnown schemes: {', '.join(sorted(known)) or 'none'}"
        what += f" (from {', '.join(installed_by)})." if installed_by else "."
        hint = (
            f"pip install {package}"
            if package
            else "install the provider package that adds this scheme, or check the URI for a typo"
        )
        super().__init__(_message(what, hint))
        self.uri, self.scheme, self.known, self.package = uri, scheme, known, package


class PluginConflictError(GlacierError):
    """Two installed plugins claim the same name (a URI scheme) and neither asked to override."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(_message(what, hint))


class StepError(GlacierError):
    """A step of a running pipeline failed.

    Attributes
    ----------
    step
        The step's name.
    uri
        The URI involved (a source or the target), if any.
    hint
        How to fix it.
    """

    default_hint: str | None = None

    def __init__(self, step: str, what: str, *, uri: str | None = None, hint: str | None = None) -> None:
        self.step, self.uri, self.what = step, uri, what
        self.hint = hint if hint is not None else self.default_hint
        # Storage raises some step errors without knowing the step; the runner names it.
        where = (f"Step {step!r} failed" if step else "Failed") + (f" on {uri}" if uri else "")
        super().__init__(_message(f"{where}: {what}", self.hint))

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self).__name__, self.step, self.what, self.uri, self.hint))

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data, for the worker and handler protocol."""
        return {
            "type": type(self).__name__,
            "message": str(self),
            "step": self.step,
            "what": self.what,
            "uri": self.uri,
            "hint": self.hint,
        }


class SourceNotFoundError(StepError):
    """A step's source does not exist (yet)."""

    default_hint = "check the bucket and path, or run the step that writes this source first"


class SourceReadError(StepError):
    """A step's source exists but cannot be read as parquet, or has the wrong schema."""

    default_hint = "make sure the source is a complete parquet file (or a glob of them) with the expected columns"


class TaskFailedError(StepError):
    """The task's own code raised.

    Attributes
    ----------
    traceback
        The formatted traceback of the task's exception, when known.
    """

    traceback: str | None = None


class TaskOutputError(StepError):
    """The task returned something other than a polars LazyFrame or DataFrame."""

    default_hint = "return a pl.LazyFrame (preferred: it streams) or a pl.DataFrame from the task"


class TargetWriteError(StepError):
    """The step's result could not be written (or the lazy query failed while writing)."""


class StepTimeoutError(StepError):
    """A step ran past its ``timeout`` and was stopped."""

    default_hint = "raise the task's timeout=, or make the step do less work"


class StorageUnreachableError(StepError):
    """A store's endpoint could not be reached (connection refused, no such host, timeout).

    Storage raises it with an empty ``step`` (it does not know which step asked); the
    runner and the worker protocol fill in the step.
    """

    default_hint = "check the network and the store's endpoint setting"


class RunInterrupted(KeyboardInterrupt):
    """A run was stopped by Ctrl-C (``KeyboardInterrupt``) and recorded as ``interrupted``.

    It is a ``KeyboardInterrupt``, so ``except Exception`` does not swallow it. Worker
    steps in flight were killed before their targets were committed; steps running in
    this process's threads, or remotely, cannot be stopped.

    Attributes
    ----------
    run_id, pipeline
        The run.
    in_flight
        The steps that were running when the run was interrupted.
    still_running
        Those of them still running in this process's threads: they end with the process,
        or may yet write their targets if the process goes on.
    remote
        Those of them running remotely (cloud mode), which may yet write their targets.
    result
        The run's result, with ``interrupted`` and ``cancelled`` steps.
    """

    def __init__(
        self,
        run_id: str,
        pipeline: str,
        *,
        in_flight: list[str],
        still_running: list[str] | None = None,
        remote: list[str] | None = None,
        result: Any = None,
    ) -> None:
        self.run_id, self.pipeline, self.result = run_id, pipeline, result
        self.in_flight = list(in_flight)
        self.still_running = list(still_running or [])
        self.remote = list(remote or [])
        super().__init__(f"run {run_id} of {pipeline!r} was interrupted; {self.steps_in_flight()}; run it again with resume=True to continue")

    def steps_in_flight(self, *, exiting: bool = False) -> str:
        """What became of the steps in flight, in words.

        Parameters
        ----------
        exiting
            This process exits now, so the steps in its threads end with it and leave
            their targets as they were.
        """
        count = len(self.in_flight)
        if not count:
            return "no step was in flight"
        text = "1 step was in flight" if count == 1 else f"{count} steps were in flight"
        loose = [n for n in self.in_flight if n in self.remote or (n in self.still_running and not exiting)]
        if not loose:
            return text + (", its target was left as it was" if count == 1 else ", their targets were left as they were")
        targets = "its target" if len(loose) == 1 else "their targets"
        return f"{text}; {', '.join(loose)} could not be stopped and may still write {targets}"


_KINDS: dict[str, type[StepError]] = {
    cls.__name__: cls
    for cls in (
        StepError,
        SourceNotFoundError,
        SourceReadError,
        TaskFailedError,
        TaskOutputError,
        TargetWriteError,
        StepTimeoutError,
        StorageUnreachableError,
    )
}


def _rebuild(kind: str, step: str, what: str, uri: str | None, hint: str | None) -> StepError:
    return _KINDS.get(kind, StepError)(step, what, uri=uri, hint=hint)


def error_from_dict(data: dict[str, Any], step: str) -> StepError:
    """Rebuild a step error from its :meth:`StepError.to_dict` form.

    Used where an error crosses a process boundary (a worker process, a serverless
    function): the caller raises the same class with the same context.

    Parameters
    ----------
    data
        The error as the remote side reported it.
    step
        The step name, used when the remote side did not know it.
    """
    kind = str(data.get("type", "StepError"))
    if "what" in data:
        err = _rebuild(kind, str(data.get("step") or step), str(data["what"]), data.get("uri"), data.get("hint"))
    else:
        message = str(data.get("message") or "unknown error")
        err = TaskFailedError(step, message if message.startswith(kind) else f"{kind}: {message}")
    if isinstance(err, TaskFailedError):
        err.traceback = data.get("traceback")
    return err


class DeploymentNotFoundError(GlacierError):
    """Cloud mode found no deployment manifest for the pipeline."""


class IdentityError(GlacierError):
    """A deployed function could not set up its own identity's credentials for another cloud.

    Raised by :mod:`glacier.plugins.identity` (no plugin gives a token for an audience, a provider's
    set-up failed); a deployed function's handler turns it into the step's
    :class:`StepError`. The message never holds a token or a secret.

    Attributes
    ----------
    what
        What failed, and for which audience or environment variable.
    hint
        How to fix it.
    """

    def __init__(self, what: str, hint: str | None = None) -> None:
        self.what, self.hint = what, hint
        super().__init__(_message(what, hint))
