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
    "error_from_dict",
]


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
        where = f"Step {step!r} failed" + (f" on {uri}" if uri else "")
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
