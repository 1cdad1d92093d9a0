"""The Flex Consumption deployment artifact: the function app, Glacier and its runtime dependencies in one zip.

The build itself is provider-neutral (:mod:`glacier.infra.artifact`: pip for the
target platform, the dependency cache under ``GLACIER_CACHE_DIR``, the deterministic
zip); this module says what Azure Functions needs: ``function_app.py`` and ``host.json``
at the zip's root, the dependencies under ``.python_packages/lib/site-packages`` (where
the Python worker looks for them when the zip is not built remotely), Linux x86_64
wheels for the runtime's CPython version.

A function whose steps touch another provider's buckets (``s3://``, ``gs://``) also
carries that provider's plugin and the scheme's
:attr:`~glacier.plugins.registry.Scheme.function_requirements`
(:func:`glacier.infra.artifact.scheme_needs`); one that touches only ``az://`` carries
nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from glacier.infra.artifact import ArtifactBuildError, ArtifactSpec, BuiltArtifact, Carried, build, scheme_needs, strip_shared_objects, strip_tools

from glacier_azure.config import AzureFunctionConfig

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec

__all__ = ["Artifact", "ArtifactBuildError", "build_artifact", "functions_spec", "host_json", "REQUIREMENTS", "EXCLUDED", "SITE_PACKAGES"]

#: What the function imports beyond the stdlib and Glacier, pinned to the versions installed here.
#: azure-functions is the v2 model's decorators and types (the worker brings its own too,
#: but Microsoft asks apps to list it); adlfs brings azure-storage-blob and azure-identity.
REQUIREMENTS = ("polars", "pluggy", "fsspec", "adlfs", "azure-functions")

#: Top-level names removed after pip: what the function never imports and would only make
#: the package larger (pyarrow alone is 171 MB).
EXCLUDED = frozenset({"pyarrow", "pandas", "numpy", "rich", "pygments", "bin"})

#: Where the Python worker of Azure Functions finds an app's own packages.
SITE_PACKAGES = ".python_packages/lib/site-packages"

# Flex Consumption runs Linux on x86_64 with a recent glibc; manylinux2014 covers polars
# and every compiled dependency, manylinux_2_28 what only ships newer wheels.
_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
_CARRIED = (Carried("glacier-core", "glacier"), Carried("glacier-azure", "glacier_azure", skip=frozenset({"testing"})))


@dataclass(frozen=True)
class Artifact(BuiltArtifact):
    """A built Flex Consumption deployment zip.

    Attributes
    ----------
    path
        The zip file.
    sha256_base64
        Base64 of the zip's sha256 digest.
    zipped_bytes, unzipped_bytes
        The zip's size and the size of what it holds.
    packages
        Top-level package name -> unzipped bytes, largest first.
    runtime
        The Python version it was built for, e.g. ``"3.12"``.
    """

    runtime: str


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def host_json(config: AzureFunctionConfig) -> dict[str, object]:
    """The app's ``host.json``: its timeout, one step per instance at a time, deliveries before the poison queue.

    Each generated function app also sets ``AzureFunctionsJobHost__functionTimeout`` and
    ``AzureFunctionsJobHost__extensions__queues__maxDequeueCount`` from its own config,
    so one artifact serves every function of a pipeline.

    Examples
    --------
    >>> host_json(AzureFunctionConfig(timeout=5400))["functionTimeout"]
    '01:30:00'
    """
    return {
        "version": "2.0",
        "functionTimeout": _duration(config.timeout),
        "extensions": {
            "queues": {
                "batchSize": 1,  # one step per instance at a time: a step may need all of its memory
                "newBatchThreshold": 0,
                "maxDequeueCount": config.max_dequeue_count,
                "visibilityTimeout": "00:00:00",
                "maxPollingInterval": "00:00:02",  # a step waits at most ~2 s to be picked up
                "messageEncoding": "base64",
            }
        },
        "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
        "logging": {"logLevel": {"default": "Information", "Function": "Information"}},
    }


def functions_spec(config: AzureFunctionConfig, *, name: str = "glacier-azure-functions", functions: Sequence[FunctionSpec] = ()) -> ArtifactSpec:
    """What :func:`build_artifact` builds for ``config``'s Python version.

    ``functions`` are the functions the zip serves: the storage of every other provider's
    scheme their steps touch is added (:func:`glacier.infra.artifact.scheme_needs`).

    Examples
    --------
    >>> spec = functions_spec(AzureFunctionConfig(runtime="3.12"))
    >>> spec.filename, spec.site_packages, [name for name, _ in spec.extra_files]
    ('glacier-azure-functions-py3.12-x86_64.zip', '.python_packages/lib/site-packages', ['function_app.py', 'host.json'])
    """
    from glacier_azure.handler import FUNCTION_APP

    needs = scheme_needs(functions, equipped={"glacier-azure"})
    return ArtifactSpec(
        label="Azure Functions",
        filename=f"{name}-py{config.runtime}-x86_64.zip",
        platforms=_PLATFORMS,
        python_version=config.python_version,
        requirements=(*REQUIREMENTS, *(r for r in needs.requirements if r not in REQUIREMENTS)),
        carried=(*_CARRIED, *needs.all_carried),
        excluded=EXCLUDED,
        prune=(strip_shared_objects(strip_tools("x86_64")),),
        site_packages=SITE_PACKAGES,
        extra_files=(("function_app.py", FUNCTION_APP.encode()), ("host.json", (json.dumps(host_json(config), indent=2) + "\n").encode())),
    )


def build_artifact(
    modules: Sequence[tuple[str, Path]],
    config: AzureFunctionConfig,
    out_dir: Path,
    *,
    name: str = "glacier-azure-functions",
    functions: Sequence[FunctionSpec] = (),
) -> Artifact:
    """Build the deployment zip for ``config``'s Python version.

    Parameters
    ----------
    modules
        ``(import name, source file)`` of each user module the functions import.
    config
        The function's config; its ``runtime`` chooses the wheels, its timeout and
        dequeue count fill ``host.json``.
    out_dir
        Where ``{name}-py{runtime}-x86_64.zip`` is written.
    name
        The zip's name prefix.
    functions
        The functions the zip serves. For every scheme of another provider that their
        steps read or write, that provider's plugin and the scheme's
        ``function_requirements`` are added; without them, the zip serves ``az://`` only.

    Raises
    ------
    ArtifactBuildError
        When pip cannot install the dependencies for the platform.

    Examples
    --------
    Not run as a test: pip downloads polars' wheels for the platform from the index.

    >>> art = build_artifact([("etl", Path("etl.py"))], AzureFunctionConfig(), Path("build"))  # doctest: +SKIP
    >>> art.path.name  # doctest: +SKIP
    'glacier-azure-functions-py3.12-x86_64.zip'
    """
    built = build(functions_spec(config, name=name, functions=functions), modules, out_dir)
    return Artifact(
        path=built.path,
        sha256_base64=built.sha256_base64,
        zipped_bytes=built.zipped_bytes,
        unzipped_bytes=built.unzipped_bytes,
        packages=built.packages,
        runtime=config.runtime,
    )
