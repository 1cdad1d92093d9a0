"""Everything a provider author imports, in one place.

A provider package (``glacier-aws``, ``glacier-gcp``, a third party's) is a plugin: a
module of hook functions marked with :data:`hookimpl` (see :mod:`glacier.plugins.hookspecs`
for every hook), registered under the ``glacier`` entry-point group. Through those
hooks it contributes:

- config classes, and a :class:`ProviderBackend` for its provider config;
- bucket URI schemes (:class:`Scheme`), each served by a :class:`Storage` subclass;
- executor kinds (:class:`ExecutorKind`): an :class:`Executor` subclass, or for a
  deployed function a :class:`RemoteExecutor` that implements ``invoke_function``;
- infrastructure generators (:class:`CodegenTarget`);
- what leaving its cloud costs per GB (:class:`EgressPrice`), for ``mode="analyze"``.

Steps cross to where they run as the JSON payload of :mod:`glacier.plugins.payload`;
a remote executor finds its task's function in the deployment manifest, a
:class:`Deployment` of :class:`DeploymentEntry` (:mod:`glacier.plugins.deployment`);
lifecycle hooks are told about the run through a :class:`RunContext`. See
``docs/plugins.md`` for the provider package template.

Examples
--------
>>> from glacier.plugins import Scheme, hookimpl
>>> @hookimpl
... def glacier_storage_schemes():
...     return [Scheme("shout", "glacier_shout.storage:ShoutStorage", package="glacier-shout")]
>>> glacier_storage_schemes()[0].name
'shout'
"""

from glacier.plugins import hookspecs
from glacier.plugins.backend import ProviderBackend
from glacier.plugins.context import RunContext
from glacier.plugins.deployment import Deployment, DeploymentEntry
from glacier.plugins.executor import Executor
from glacier.plugins.hookspecs import hookimpl, hookspec
from glacier.plugins.payload import (
    PROTOCOL_VERSION,
    StepOutcome,
    build_payload,
    outcome_from_result,
)
from glacier.plugins.registry import (
    CodegenTarget,
    EgressPrice,
    ExecutorKind,
    Scheme,
    get_plugin_manager,
)
from glacier.plugins.remote import RemoteExecutor
from glacier.plugins.serialization import config_from_dict, config_to_dict
from glacier.plugins.storage import Storage

__all__ = [
    "PROTOCOL_VERSION",
    "CodegenTarget",
    "Deployment",
    "DeploymentEntry",
    "EgressPrice",
    "Executor",
    "ExecutorKind",
    "ProviderBackend",
    "RemoteExecutor",
    "RunContext",
    "Scheme",
    "StepOutcome",
    "Storage",
    "build_payload",
    "config_from_dict",
    "config_to_dict",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "hookspecs",
    "outcome_from_result",
]
