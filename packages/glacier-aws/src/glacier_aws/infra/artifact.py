"""The Lambda deployment artifact: the user's modules, Glacier and its runtime dependencies in one zip.

The build itself is provider-neutral (:mod:`glacier.infra.artifact`: pip for the
target platform, the dependency cache, the deterministic zip, the size check); this
module says what Lambda needs: its wheel platforms, the runtime's CPython version,
its 250 MB limit, what Lambda's runtime already has, and the botocore pruning.

A function whose steps touch another provider's buckets (``gs://``, ``az://``) also
carries that provider's plugin and the scheme's
:attr:`~glacier.plugins.registry.Scheme.function_requirements`
(:func:`glacier.infra.artifact.scheme_needs`); one that touches only ``s3://`` carries
nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from glacier.infra.artifact import (
    ArtifactBuildError,
    ArtifactSpec,
    ArtifactTooLargeError,
    BuiltArtifact,
    Carried,
    build,
    keep_only,
    scheme_needs,
    strip_shared_objects,
    strip_tools,
)

from glacier_aws.config import LAMBDA_LIMITS, LambdaConfig

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec

__all__ = [
    "Artifact",
    "ArtifactBuildError",
    "ArtifactTooLargeError",
    "build_artifact",
    "lambda_spec",
    "REQUIREMENTS",
    "EXCLUDED",
    "BOTOCORE_SERVICES",
]

#: What the handler imports beyond the stdlib and Glacier, pinned to the versions installed here.
#: python-hcl2 is not among them: it is glacier-core's ``infra`` extra, for generating only.
REQUIREMENTS = ("polars", "pluggy", "fsspec", "s3fs")

#: Top-level names removed after pip: Lambda's runtime has boto3 (and s3transfer); the rest
#: the handler never imports and would eat the 250 MB budget (pyarrow alone is 171 MB).
#: botocore stays: aiobotocore pins a narrow botocore range that Lambda's own may miss.
EXCLUDED = frozenset({"boto3", "s3transfer", "pyarrow", "pandas", "numpy", "rich", "pygments", "bin"})

#: The botocore service models the handler can load: S3 (s3fs), the services its
#: credential chain calls (STS for web identity and assumed roles, SSO), and Secrets
#: Manager, from which a function reaching a cloud no federation trusts AWS roles for
#: reads its client secret (glacier_aws.identity.read_secrets; found deploying one: the
#: artifact's botocore shadows the runtime's full one, and refused "secretsmanager").
#: botocore ships 400-odd others, 27 MB the handler can never import.
BOTOCORE_SERVICES = frozenset({"s3", "sts", "sso", "sso-oidc", "secretsmanager"})

# polars 2.1 and every compiled dependency ship manylinux2014 (glibc 2.17) wheels, which run
# on both Lambda OS images (Amazon Linux 2 for python3.11 has glibc 2.26). Adding
# manylinux_2_28 would let pip pick wheels that python3.11's image cannot load.
_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_TRIPLES = {"x86_64": "x86_64", "arm64": "aarch64"}
_CARRIED = (Carried("glacier-core", "glacier"), Carried("glacier-aws", "glacier_aws", skip=frozenset({"testing"})))
_LIMIT = cast(int, LAMBDA_LIMITS["unzipped_bytes"])  # LAMBDA_LIMITS mixes ints and ranges


@dataclass(frozen=True)
class Artifact(BuiltArtifact):
    """A built Lambda deployment zip.

    Attributes
    ----------
    path
        The zip file.
    sha256_base64
        Base64 of the zip's sha256 digest (Terraform's ``source_code_hash``).
    zipped_bytes, unzipped_bytes
        The zip's size and the size of what it holds.
    packages
        Top-level package name -> unzipped bytes, largest first.
    runtime, architecture
        What it was built for, e.g. ``"python3.12"``, ``"arm64"``.
    """

    runtime: str
    architecture: str


def lambda_spec(
    config: LambdaConfig, *, name: str = "glacier-lambda", limit: int = _LIMIT, functions: Sequence[FunctionSpec] = ()
) -> ArtifactSpec:
    """What :func:`build_artifact` builds for ``config``'s runtime and architecture.

    ``functions`` are the functions the zip serves: the storage of every other provider's
    scheme their steps touch is added (:func:`glacier.infra.artifact.scheme_needs`).

    Examples
    --------
    >>> spec = lambda_spec(LambdaConfig(runtime="python3.12", architecture="arm64"))
    >>> spec.filename, spec.platforms, spec.python_version
    ('glacier-lambda-python3.12-arm64.zip', ('manylinux2014_aarch64',), '3.12')
    """
    needs = scheme_needs(functions, equipped={"glacier-aws"})
    return ArtifactSpec(
        label="Lambda",
        filename=f"{name}-{config.runtime}-{config.architecture}.zip",
        platforms=(_PLATFORMS[config.architecture],),
        python_version=config.python_version,
        requirements=(*REQUIREMENTS, *(r for r in needs.requirements if r not in REQUIREMENTS)),
        carried=(*_CARRIED, *needs.all_carried),
        excluded=EXCLUDED,
        prune=(keep_only("botocore/data", sorted(BOTOCORE_SERVICES)), strip_shared_objects(_strip_tools(config.architecture))),
        size_limit=limit,
    )


def build_artifact(
    modules: Sequence[tuple[str, Path]],
    config: LambdaConfig,
    out_dir: Path,
    *,
    name: str = "glacier-lambda",
    limit: int = _LIMIT,
    functions: Sequence[FunctionSpec] = (),
) -> Artifact:
    """Build the deployment zip for ``config``'s runtime and architecture.

    Parameters
    ----------
    modules
        ``(import name, source file)`` of each user module the functions import;
        a dotted module brings its whole top-level package.
    config
        The function's config; its ``runtime`` and ``architecture`` choose the wheels.
    out_dir
        Where ``{name}-{runtime}-{architecture}.zip`` is written.
    name
        The zip's name prefix.
    limit
        The most unzipped bytes allowed (Lambda's 250 MB).
    functions
        The functions the zip serves. For every scheme of another provider that their
        steps read or write, that provider's plugin and the scheme's
        ``function_requirements`` are added; without them, the zip serves ``s3://`` only.

    Raises
    ------
    ArtifactTooLargeError
        Before anything is written, when the contents are over ``limit``.
    ArtifactBuildError
        When pip cannot install the dependencies for the platform.

    Examples
    --------
    Not run as a test: pip downloads polars' wheels for the platform from the index.

    >>> art = build_artifact([("etl", Path("etl.py"))], LambdaConfig(), Path("build"))  # doctest: +SKIP
    >>> art.path.name  # doctest: +SKIP
    'glacier-lambda-python3.12-x86_64.zip'
    """
    built = build(lambda_spec(config, name=name, limit=limit, functions=functions), modules, out_dir)
    return Artifact(
        path=built.path,
        sha256_base64=built.sha256_base64,
        zipped_bytes=built.zipped_bytes,
        unzipped_bytes=built.unzipped_bytes,
        packages=built.packages,
        runtime=config.runtime,
        architecture=config.architecture,
    )


def _strip_tools(architecture: str) -> list[str]:
    """The ``strip`` programs on this machine that may read ``architecture``'s ELF files, best first."""
    return strip_tools(_TRIPLES[architecture])
