"""The Cloud Functions source artifact: the function's source zip, as Cloud Functions builds it.

Cloud Functions (gen2) installs a Python function's dependencies itself, from the
``requirements.txt`` at the root of the uploaded source, so the zip carries source only:

- ``main.py``, exposing the handler (entry point ``handler``);
- ``requirements.txt``, every dependency pinned to the version installed here (the
  handler's requirements and everything they pull in), so that the function runs what
  the local runs were tested with;
- the user's task modules;
- Glacier's own packages (``glacier``, ``glacier_gcp``) as source folders with their
  ``METADATA`` and ``entry_points.txt``, because the builder cannot reach Glacier's
  index and the plugin must load inside the function.

The zip is deterministic (same inputs, same bytes: sorted entries, fixed timestamps and
modes), so its object name, which carries its digest, changes only when the code does.
Unlike Lambda's 250 MB, Cloud Functions sets no unzipped limit on what the builder
installs (polars and gcsfs are ~241 MB installed); the source zip itself is small and
its size is reported.

A function whose steps touch another provider's buckets (``s3://``, ``az://``) also
carries that provider's plugin, and its ``requirements.txt`` pins the scheme's
:attr:`~glacier.plugins.registry.Scheme.function_requirements` with their closure
(:func:`glacier.infra.artifact.scheme_needs`); one that touches only ``gs://`` pins
nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.metadata
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from glacier.errors import GlacierError
from glacier.infra.artifact import BuiltArtifact, scheme_needs

from glacier_gcp.config import CloudFunctionConfig

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec

__all__ = ["Artifact", "build_artifact", "requirements", "REQUIREMENTS", "FUNCTIONS_FRAMEWORK", "MAIN_PY", "ENTRY_POINT"]

#: What the handler imports beyond the stdlib and Glacier, and what serves it.
REQUIREMENTS = ("polars", "pluggy", "fsspec", "gcsfs", "functions-framework")

#: The functions-framework pinned when it is not installed here (it is kept out of
#: Glacier's own environment: its namespace ``.pth`` imports ``google.cloud`` at start).
FUNCTIONS_FRAMEWORK = "3.10.2"

#: The function's entry point (``--entry-point`` / Terraform's ``build_config.entry_point``).
ENTRY_POINT = "handler"

#: The function's ``main.py``.
MAIN_PY = '''"""The Cloud Function's source: Glacier's handler runs the task named by GLACIER_TASK."""

from glacier_gcp.handler import handler

__all__ = ["handler"]
'''

#: (distribution, package, folders left out besides __pycache__ and tests)
_CARRIED = (("glacier-core", "glacier", frozenset[str]()), ("glacier-gcp", "glacier_gcp", frozenset({"testing"})))
_SKIP_DIRS = frozenset({"__pycache__", "tests"})
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Artifact(BuiltArtifact):
    """A built Cloud Functions source zip.

    Attributes
    ----------
    path
        The zip file.
    sha256_base64
        Base64 of the zip's sha256 digest.
    zipped_bytes, unzipped_bytes
        The zip's size and the size of what it holds (source only: the builder installs the rest).
    packages
        Top-level entry -> unzipped bytes, largest first.
    runtime
        The runtime it is for, e.g. ``"python312"``.
    requirements
        The lines of its ``requirements.txt``.
    """

    runtime: str
    requirements: tuple[str, ...]

    @property
    def sha256_hex(self) -> str:
        """The zip's sha256 digest in hex (part of its object name in the generated Terraform)."""
        return base64.b64decode(self.sha256_base64).hex()


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirements(extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The ``requirements.txt`` lines: :data:`REQUIREMENTS` (and ``extra``) with their installed closure, each pinned to the version here.

    Examples
    --------
    >>> lines = requirements()
    >>> any(line.startswith("polars==") for line in lines), f"functions-framework=={FUNCTIONS_FRAMEWORK}" in lines or any(line.startswith("functions-framework==") for line in lines)
    (True, True)
    """
    pins: dict[str, str] = {}
    todo = [*REQUIREMENTS, *extra]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in pins:
            continue
        version = _version(name)
        if version is None:
            if key == "functions-framework":
                pins[key] = FUNCTIONS_FRAMEWORK
            continue  # a dependency of something not installed here: the builder resolves it
        pins[key] = version
        for req in importlib.metadata.requires(name) or []:
            if "extra ==" in req:
                continue
            todo.append(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0])
    return tuple(f"{name}=={version}" for name, version in sorted(pins.items()))


def build_artifact(
    modules: Sequence[tuple[str, Path]],
    config: CloudFunctionConfig,
    out_dir: Path,
    *,
    name: str = "glacier-function",
    functions: Sequence[FunctionSpec] = (),
) -> Artifact:
    """Build the function's source zip.

    Parameters
    ----------
    modules
        ``(import name, source file)`` of each user module the functions import;
        a dotted module brings its whole top-level package (its ``.py`` files).
    config
        The function's config; its ``runtime`` names the zip.
    out_dir
        Where ``{name}-{runtime}.zip`` is written.
    name
        The zip's name prefix.
    functions
        The functions the zip serves. For every scheme of another provider that their
        steps read or write, that provider's plugin is carried and the scheme's
        ``function_requirements`` are pinned; without them, the zip serves ``gs://`` only.

    Raises
    ------
    GlacierError
        When two sources claim one entry of the zip (a user module named like a package).

    Examples
    --------
    >>> from pathlib import Path
    >>> from glacier.config import CloudFunctionConfig
    >>> _ = (tmp / "etl.py").write_text("def transform(df): return df")
    >>> art = build_artifact([("etl", tmp / "etl.py")], CloudFunctionConfig(), tmp / "build")
    >>> art.path.name
    'glacier-function-python312.zip'
    """
    needs = scheme_needs(functions, equipped={"glacier-gcp"})
    reqs = requirements(needs.requirements)
    files: dict[str, bytes] = {"main.py": MAIN_PY.encode(), "requirements.txt": ("\n".join(reqs) + "\n").encode()}
    for distribution, package, skip in (*_CARRIED, *((c.distribution, c.package, c.skip) for c in needs.all_carried)):
        root = Path(importlib.import_module(package).__file__ or "").parent
        for path in _walk(root, _SKIP_DIRS | skip):
            _put(files, f"{package}/{path.relative_to(root).as_posix()}", path.read_bytes())
        # Without dist-info, importlib.metadata cannot see the `glacier` entry points and
        # the plugin would not load inside the function. RECORD and direct_url name this
        # machine's paths and are left out.
        meta = importlib.metadata.distribution(distribution)
        dist_info = f"{distribution.replace('-', '_')}-{meta.version}.dist-info"
        for text in ("METADATA", "entry_points.txt"):
            if (content := meta.read_text(text)) is not None:
                _put(files, f"{dist_info}/{text}", content.encode())
    for module, source in modules:
        _add_module(files, module, Path(source))

    sizes: dict[str, int] = {}
    for arc, data in files.items():
        top = arc.split("/")[0]
        sizes[top] = sizes.get(top, 0) + len(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{config.runtime}.zip"
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            for arc in sorted(files):
                info = zipfile.ZipInfo(arc, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix, so external_attr holds a mode
                info.external_attr = 0o100644 << 16
                zf.writestr(info, files[arc])
        os.replace(tmp, target)  # readers never see a half-written zip
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    data = target.read_bytes()
    return Artifact(
        path=target,
        sha256_base64=base64.b64encode(hashlib.sha256(data).digest()).decode(),
        zipped_bytes=len(data),
        unzipped_bytes=sum(len(v) for v in files.values()),
        packages=dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))),
        runtime=config.runtime,
        requirements=reqs,
    )


def _walk(root: Path, skip: frozenset[str] = _SKIP_DIRS) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        found += [Path(dirpath, f) for f in filenames if not f.endswith((".pyc", ".pyo"))]
    return sorted(found)


def _put(files: dict[str, bytes], arc: str, data: bytes) -> None:
    old = files.setdefault(arc, data)
    if old != data:  # e.g. a user module named like a package: one would silently win
        msg = f"two sources for {arc} in the Cloud Functions source zip"
        raise GlacierError(f"{msg}\n\nHint: rename the user module that shadows a package")


def _add_module(files: dict[str, bytes], module: str, source: Path) -> None:
    source = source.resolve()
    depth = module.count(".") + (source.name == "__init__.py")
    if depth == 0:
        _put(files, f"{module}.py", source.read_bytes())
        return
    top = source.parents[depth - 1]
    if top.name != module.split(".")[0]:
        msg = f"module {module!r} does not match its file {source}: expected it under a folder named {module.split('.')[0]!r}"
        raise GlacierError(msg)
    for path in _walk(top, frozenset({"__pycache__"})):
        if path.suffix == ".py" or path.name == "py.typed":  # a user's folder may hold data and notebooks
            _put(files, f"{top.name}/{path.relative_to(top).as_posix()}", path.read_bytes())
