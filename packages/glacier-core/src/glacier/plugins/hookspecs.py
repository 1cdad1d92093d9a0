# mypy: disable-error-code="empty-body"
"""Every extension point of Glacier, in one place.

A plugin is a module (or object) with functions named after these hooks and marked
with :data:`glacier.hookimpl`. Glacier finds plugins through the ``glacier``
entry-point group::

    [project.entry-points.glacier]
    aws = "glacier_aws.plugin"

The built-ins (``file://`` and ``memory://`` buckets, the in-process executor) are
plugins too and use exactly these hooks. Hooks that *contribute* things return lists
and every plugin's list is collected; hooks that *choose* return one answer
(``firstresult``). Lifecycle hooks are notifications: their return value is ignored.

Keep plugin modules light: return dotted paths (``"glacier_aws.storage:S3Storage"``)
and let Glacier import the heavy code when it is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from glacier.dag import TaskInstance
    from glacier.plugins.backend import ProviderBackend
    from glacier.plugins.context import RunContext
    from glacier.plugins.registry import CodegenTarget, EgressPrice, ExecutorKind, Scheme
    from glacier.result import RunResult, StepResult

hookspec = pluggy.HookspecMarker("glacier")
hookimpl = pluggy.HookimplMarker("glacier")


# -- What a plugin contributes ---------------------------------------------------


@hookspec
def glacier_configs() -> list[type]:
    """Config classes this plugin adds to :mod:`glacier.config` (e.g. ``AwsConfig``)."""


@hookspec(firstresult=True)
def glacier_provider_for_config(config: Any) -> ProviderBackend | None:
    """The provider implementation for ``config``, or ``None`` if the config is not this plugin's."""


@hookspec
def glacier_storage_schemes() -> list[Scheme]:
    """Bucket URI schemes this plugin handles, each with its storage class (fsspec + polars options)."""


@hookspec
def glacier_executor_kinds() -> list[ExecutorKind]:
    """Executor kinds this plugin adds (``provider.serverless(config=...)`` picks one by config type)."""


@hookspec
def glacier_codegen_targets() -> list[CodegenTarget]:
    """Infrastructure generators this plugin adds for ``mode="generate"`` (one per provider)."""


@hookspec
def glacier_egress_prices() -> list[EgressPrice]:
    """What each of this plugin's providers charges per GB leaving it, for ``mode="analyze"``'s cost of crossing clouds."""


# -- What happens during a run (notifications) -------------------------------------


@hookspec
def glacier_run_started(run: RunContext) -> None:
    """A pipeline run started; ``run.steps`` lists every step it may run."""


@hookspec
def glacier_step_started(run: RunContext, step: TaskInstance, attempt: int) -> None:
    """An attempt of a step started (``attempt`` counts from 1)."""


@hookspec
def glacier_step_finished(run: RunContext, step: TaskInstance, result: StepResult) -> None:
    """A step ended with its final status: succeeded, cached, failed, timed out or skipped."""


@hookspec
def glacier_step_failed(run: RunContext, step: TaskInstance, error: BaseException, attempt: int, will_retry: bool) -> None:
    """An attempt of a step failed; ``will_retry`` tells whether another attempt follows."""


@hookspec
def glacier_run_finished(run: RunContext, result: RunResult) -> None:
    """A pipeline run ended; ``result`` holds every step's outcome."""


# -- Where a step runs: a deployed function's own identity ---------------------------


@hookspec(firstresult=True)
def glacier_identity_token(audience: str) -> str | None:
    """An OIDC token (a JWT) of this place's own identity for ``audience``, or ``None`` when this plugin's cloud is not where the code runs."""


@hookspec
def glacier_configure_credentials(environ: MutableMapping[str, str]) -> None:
    """Before a deployed function's first step: set in ``environ`` what this plugin's storage libraries need to reach its buckets from here."""
