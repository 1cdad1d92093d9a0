"""Remote executors: each step is one invocation of the task's deployed function.

:class:`RemoteExecutor` does, for any cloud, what cloud mode needs: it finds the task's
:class:`~glacier.plugins.deployment.DeploymentEntry` in the deployment manifest, builds
the payload (:mod:`glacier.plugins.payload`) naming the task by module and qualname
(the function imports it by name, never from a file) and the function it is sent to,
invokes it, and turns the result into a :class:`~glacier.plugins.payload.StepOutcome`
or into the step's error, naming the function and where its logs are.

A provider implements two methods::

    class CloudRunExecutor(RemoteExecutor):
        kind = "cloudrun"
        function_label = "Cloud Run service"

        def invoke_function(self, entry, payload):
            response = post(entry.extras["url"], json=payload)  # the platform's call
            ...  # a platform timeout -> StepTimeoutError, a crash -> StepError
            return response.json()  # the handler's result dict

        def problems(self, instance):
            return []  # limits of the platform the step breaks
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from glacier.errors import StepError
from glacier.plugins.executor import Executor

if TYPE_CHECKING:
    from glacier.dag import TaskInstance
    from glacier.plugins.deployment import Deployment, DeploymentEntry
    from glacier.plugins.payload import StepOutcome

__all__ = ["RemoteExecutor"]


class RemoteExecutor(Executor):
    """Base class of executors that invoke a deployed function per step.

    Subclasses set :attr:`kind` and :attr:`function_label`, and implement
    :meth:`invoke_function` (and :meth:`~glacier.plugins.executor.Executor.problems`
    for the platform's limits). ``mode="local"`` runs their steps on this machine;
    ``mode="cloud"`` needs the deployment manifest that ``mode="generate"`` wrote.
    """

    runs_here: ClassVar[bool] = False
    needs_deployment: ClassVar[bool] = True
    #: How messages name one deployed function: ``"Lambda function"`` gives
    #: ``(in Lambda function 'etl-transform')``.
    function_label: ClassVar[str] = "function"
    #: The platform's longest step, in seconds (``None``: no limit to check).
    max_timeout_s: ClassVar[float | None] = None
    #: How messages name that limit: ``"Lambda's limit of 900 s"``.
    max_timeout_text: ClassVar[str] = "the platform's limit"
    #: Who stops a step at the function's timeout: ``"Lambda"``.
    stopped_by: ClassVar[str] = "the platform"

    def run(self, instance: TaskInstance, run_id: str, attempt: int = 1, **context: Any) -> StepOutcome:
        """Invoke the task's deployed function for this step and return its outcome.

        Parameters
        ----------
        instance
            The step.
        run_id, attempt
            Sent in the payload.
        **context
            ``deployment``: the :class:`~glacier.plugins.deployment.Deployment` that
            cloud mode read.

        Raises
        ------
        StepError
            When the manifest has no function for the task, when
            :meth:`invoke_function` raises (its errors name the function already), or
            when the step failed inside the function (then the error keeps its class
            and says which function ran it and where its logs are).
        """
        from glacier.plugins.deployment import Deployment
        from glacier.plugins.payload import build_payload, outcome_from_result

        deployment: Deployment = context.get("deployment") or Deployment(pipeline="")
        entry = deployment.entry(instance.task.name, step=instance.name, platform=self.function_label)
        payload = build_payload(instance, run_id, attempt)
        # Inside the function the task's module is imported by name, never by a local path.
        payload["task"] = {"module": entry.module, "qualname": entry.qualname, "file": None}
        payload["function"] = entry.function_name
        result = self.invoke_function(entry, payload)  # its errors already name the function
        try:
            return outcome_from_result(result, instance.name)
        except StepError as err:
            # The step failed inside the function: say which one, and where its logs are.
            hint = f"{err.hint + '; ' if err.hint else ''}{self._logs_sentence(entry)}"
            named = type(err)(err.step, f"{err.what} (in {self.function_label} {entry.function_name!r})", uri=err.uri, hint=hint)
            named.traceback = getattr(err, "traceback", None)  # type: ignore[attr-defined]
            raise named from err

    def problems(self, instance: TaskInstance) -> list[str]:
        """The platform's limits the step breaks: a task ``timeout=`` over :attr:`max_timeout_s`
        or over the function config's ``timeout``.

        Override (and call this) to add the platform's other limits.
        """
        found: list[str] = []
        timeout = instance.task.timeout
        config = self.config
        if timeout is None:
            return found
        if self.max_timeout_s is not None and timeout > self.max_timeout_s:
            found.append(f"timeout={timeout:g}s is over {self.max_timeout_text}")
        elif config is not None and getattr(config, "timeout", None) is not None and timeout > config.timeout:
            found.append(f"timeout={timeout:g}s is over the function's {type(config).__name__}(timeout={config.timeout}); {self.stopped_by} stops it first")
        return found

    def invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Not used: a remote executor invokes a deployed function (:meth:`invoke_function`)."""
        msg = f"{type(self).__name__} invokes deployed functions: call run(), which calls invoke_function(entry, payload)"
        raise NotImplementedError(msg)

    def invoke_function(self, entry: DeploymentEntry, payload: dict[str, Any]) -> dict[str, Any]:
        """Send ``payload`` to the deployed function ``entry`` and return the handler's result dict.

        Parameters
        ----------
        entry
            The task's function, from the deployment manifest.
        payload
            The payload of :mod:`glacier.plugins.payload`, ``"function"`` set to
            ``entry.function_name``.

        Returns
        -------
        dict
            What the function's handler returned (``{"ok": True, ...}`` or
            ``{"ok": False, "error": ...}``); :meth:`run` turns it into the outcome.

        Raises
        ------
        StepTimeoutError
            When the platform stopped the function at its timeout, naming the function.
        StepError
            When the platform says the function failed or does not exist, naming the
            function (and, in the hint, :meth:`logs_hint`).
        """
        raise NotImplementedError

    def logs_hint(self, entry: DeploymentEntry) -> str | None:
        """Where the function's logs are, for error hints: the entry's ``"logs"`` extra by default."""
        return entry.logs

    def _logs_sentence(self, entry: DeploymentEntry) -> str:
        where = self.logs_hint(entry)
        if where:
            return f"the function's logs are in {where}"
        return f"see the logs of {self.function_label} {entry.function_name!r}"
