"""The deployment manifest as data: which deployed function runs which task.

``mode="generate"`` asks each provider's generator to fill one
:class:`DeploymentEntry` per serverless task, and writes them as one
:class:`Deployment` (``glacier-deployment.json``, see :mod:`glacier.infra.manifest`);
cloud mode reads it back and hands it to each
:class:`~glacier.plugins.remote.RemoteExecutor`, which looks up its task's entry.

On disk (version 1)::

    {
      "version": 1,
      "pipeline": "etl",
      "generated": 1767225600.0,
      "out": "/abs/infra",
      "functions": {
        "transform": {
          "function_name": "etl-transform",
          "module": "cloud_etl",
          "qualname": "transform",
          "provider": "aws",
          "executor": "lambda",
          "extras": {"region": "us-east-1", "logs": "CloudWatch (/aws/lambda/etl-transform)"}
        }
      }
    }

A manifest of another version is refused when it is read: generate and apply again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glacier.errors import StepError

__all__ = ["DEPLOYMENT_VERSION", "Deployment", "DeploymentEntry"]


#: Bumped when the manifest changes shape; a manifest of another version is refused.
DEPLOYMENT_VERSION = 1


@dataclass(frozen=True)
class DeploymentEntry:
    """One deployed function: what to invoke for a task, and how it imports the task.

    Attributes
    ----------
    function_name
        The deployed function's name on its platform (``"etl-transform"``), unique
        within the deployment; the payload's ``"function"``.
    module
        The module the function imports the task from, by name (``"cloud_etl"``): the
        payload's ``task.module``. A script's ``__main__`` is deployed under its file's stem.
    qualname
        The task's qualified name in that module (``"transform"``): the payload's
        ``task.qualname``.
    provider
        The provider that deployed it (``"aws"``).
    executor
        The executor kind that invokes it (``"lambda"``), as in
        :class:`~glacier.plugins.registry.ExecutorKind`.
    extras
        What else the provider needs to reach the function or its logs, as strings:
        ``"url"`` (an HTTP function), ``"queue"`` (a queue-triggered one), ``"region"``,
        and ``"logs"``, where its logs are (``"CloudWatch (/aws/lambda/etl-transform)"``),
        which error hints name.

    Examples
    --------
    >>> entry = DeploymentEntry("etl-transform", "cloud_etl", "transform", "aws", "lambda", {"region": "us-east-1"})
    >>> DeploymentEntry.from_dict(entry.to_dict()) == entry
    True
    >>> entry.task_ref
    'cloud_etl:transform'
    """

    function_name: str
    module: str
    qualname: str
    provider: str
    executor: str
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def task_ref(self) -> str:
        """The task as ``"module:qualname"``, as the function's ``GLACIER_TASK`` pins it."""
        return f"{self.module}:{self.qualname}"

    @property
    def logs(self) -> str | None:
        """Where the function's logs are (the ``"logs"`` extra), if the provider said."""
        return self.extras.get("logs")

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data."""
        return {
            "function_name": self.function_name,
            "module": self.module,
            "qualname": self.qualname,
            "provider": self.provider,
            "executor": self.executor,
            "extras": dict(self.extras),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentEntry:
        """The entry that :meth:`to_dict` wrote.

        Raises
        ------
        KeyError
            When a field other than ``extras`` is missing.
        """
        return cls(
            function_name=str(data["function_name"]),
            module=str(data["module"]),
            qualname=str(data["qualname"]),
            provider=str(data["provider"]),
            executor=str(data["executor"]),
            extras={str(k): str(v) for k, v in (data.get("extras") or {}).items()},
        )


@dataclass(frozen=True)
class Deployment:
    """A pipeline's deployment manifest: its functions, by task name.

    Attributes
    ----------
    pipeline
        The pipeline's name.
    entries
        The deployed function of each serverless task, by task name (``"functions"``
        on disk).
    version
        The manifest's format, :data:`DEPLOYMENT_VERSION`.
    generated
        When ``generate`` wrote it (seconds since the epoch), if known.
    out
        The directory ``generate`` wrote, if known.

    Examples
    --------
    >>> entry = DeploymentEntry("etl-transform", "cloud_etl", "transform", "aws", "lambda")
    >>> deployment = Deployment("etl", {"transform": entry})
    >>> deployment.entry("transform", step="transform").function_name
    'etl-transform'
    >>> Deployment.from_dict(deployment.to_dict()) == deployment
    True
    """

    pipeline: str
    entries: dict[str, DeploymentEntry] = field(default_factory=dict)
    version: int = DEPLOYMENT_VERSION
    generated: float | None = None
    out: str | None = None

    def entry(self, task: str, *, step: str | None = None, platform: str = "function") -> DeploymentEntry:
        """The deployed function of ``task``.

        Parameters
        ----------
        task
            The task's name.
        step
            The step that asks (named in the error; default: the task).
        platform
            How the error names the function (``"Lambda function"``).

        Raises
        ------
        StepError
            When the manifest has no function for the task: the pipeline changed
            since it was deployed.
        """
        found = self.entries.get(task)
        if found is None:
            msg = f"task {task!r} has no deployed {platform} in the deployment manifest"
            raise StepError(step or task, msg, hint="run generate again and `terraform apply` it: the pipeline changed since it was deployed")
        return found

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data (the file ``generate`` writes)."""
        return {
            "version": self.version,
            "pipeline": self.pipeline,
            "generated": self.generated,
            "out": self.out,
            "functions": {task: entry.to_dict() for task, entry in sorted(self.entries.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployment:
        """The manifest that :meth:`to_dict` wrote (its version is checked by :func:`glacier.infra.manifest.load_deployment`)."""
        generated = data.get("generated")
        out = data.get("out")
        return cls(
            pipeline=str(data.get("pipeline", "")),
            entries={str(task): DeploymentEntry.from_dict(entry) for task, entry in (data.get("functions") or {}).items()},
            version=int(data.get("version", 0)),
            generated=float(generated) if generated is not None else None,
            out=str(out) if out is not None else None,
        )
