"""A function's deployment artifact, for any provider: the user's modules, Glacier and its dependencies in one zip.

The dependencies are installed by pip *for the target platform* (its wheel tags and
CPython version), not copied from this machine, pruned, and cached under
``GLACIER_CACHE_DIR`` so that a second build runs no pip at all. Glacier's own
distributions are copied from this machine with their ``METADATA`` and
``entry_points.txt``, so that the plugins load inside the function. The zip is
deterministic (same inputs, same bytes), so a ``source_code_hash`` changes only when
the code does, and it is refused before it is written when it is over the platform's
size limit.

A provider describes its platform in an :class:`ArtifactSpec` and calls :func:`build`;
glacier-aws's :func:`glacier_aws.infra.artifact.build_artifact` is an example.

A function whose steps read or write another provider's buckets carries that scheme's
storage too: :func:`scheme_needs` lists, for the schemes the functions touch, the
plugin distributions to carry and the :attr:`Scheme.function_requirements
<glacier.plugins.registry.Scheme.function_requirements>` to install, and nothing for a
scheme no step touches.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from glacier.errors import GlacierError

if TYPE_CHECKING:
    from glacier.infra.generate import FunctionSpec

__all__ = [
    "ArtifactSpec",
    "Carried",
    "PruneStep",
    "BuiltArtifact",
    "ArtifactBuildError",
    "ArtifactTooLargeError",
    "SchemeNeeds",
    "scheme_needs",
    "build",
    "cache_root",
    "keep_only",
    "strip_shared_objects",
    "strip_tools",
]

_SKIP_DIRS = frozenset({"__pycache__", "tests"})
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CACHE_FORMAT = 1  # bump when the build below changes what a cached tree holds


@dataclass(frozen=True)
class Carried:
    """A distribution copied from this machine into the artifact, with its metadata.

    Attributes
    ----------
    distribution
        Its name on PyPI (``"glacier-aws"``).
    package
        Its top-level import package (``"glacier_aws"``).
    skip
        Folder names inside the package left out (``{"testing"}``), besides
        ``__pycache__`` and ``tests``.
    """

    distribution: str
    package: str
    skip: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PruneStep:
    """One change made to the installed dependency tree before it is cached.

    Attributes
    ----------
    key
        What the step does, with every parameter that changes its result: it is part
        of the cache key, so a changed step rebuilds the tree.
    apply
        Called with the installed tree (the folder pip installed into).
    """

    key: str
    apply: Callable[[Path], None]


@dataclass(frozen=True)
class ArtifactSpec:
    """What to build for one platform.

    Attributes
    ----------
    label
        The platform's name in messages (``"Lambda"``).
    filename
        The zip's file name (``"glacier-lambda-python3.12-x86_64.zip"``).
    platforms
        pip's ``--platform`` wheel tags (``("manylinux2014_x86_64",)``).
    python_version
        The target's CPython version (``"3.12"``).
    requirements
        Distributions the function imports beyond the stdlib and :attr:`carried`,
        pinned to the versions installed here (and their installed closure as
        constraints).
    carried
        Glacier's distributions, copied from this machine with their metadata.
    excluded
        Top-level names removed after pip (``"boto3"`` removes ``boto3/`` and
        ``boto3-1.x.dist-info/``), e.g. what the platform's runtime already has.
    prune
        Further changes to the installed tree, in order.
    size_limit
        The most unzipped bytes allowed, or ``None`` for no limit.
    site_packages
        The folder inside the zip that holds the dependencies and :attr:`carried`
        (``""``, the zip's root, for Lambda; ``".python_packages/lib/site-packages"``
        for Azure Functions). The user's modules always go to the root.
    extra_files
        ``(name in the zip, content)`` of files the platform needs beside the code,
        such as Azure Functions' ``host.json`` and ``function_app.py``.
    """

    label: str
    filename: str
    platforms: tuple[str, ...]
    python_version: str
    requirements: tuple[str, ...]
    carried: tuple[Carried, ...] = (Carried("glacier-core", "glacier"),)
    excluded: frozenset[str] = frozenset()
    prune: tuple[PruneStep, ...] = ()
    size_limit: int | None = None
    site_packages: str = ""
    extra_files: tuple[tuple[str, bytes], ...] = ()


class ArtifactBuildError(GlacierError):
    """pip could not install the dependencies for the target platform.

    Attributes
    ----------
    command
        The pip command that failed.
    """

    def __init__(self, what: str, command: list[str], output: str) -> None:
        hint = "check that every pinned version has a wheel for this runtime and architecture"
        super().__init__(f"{what}\n\n$ {' '.join(command)}\n{output[-3000:]}\n\nHint: {hint}")
        self.command = command


class ArtifactTooLargeError(GlacierError):
    """The artifact is over its platform's unzipped size limit.

    Attributes
    ----------
    unzipped_bytes, limit
        The artifact's size and the limit, in bytes.
    packages
        Package name -> unzipped bytes, largest first.
    """

    def __init__(self, name: str, unzipped_bytes: int, limit: int, packages: dict[str, int], *, label: str = "the") -> None:
        largest = "\n".join(f"  {pkg:<28} {size / 2**20:8.1f} MB" for pkg, size in list(packages.items())[:8])
        msg = (
            f"{label} artifact {name} is {unzipped_bytes:,} bytes ({unzipped_bytes / 2**20:.1f} MB) unzipped, "
            f"over the limit of {limit:,} bytes ({limit / 2**20:.0f} MB). Largest packages:\n{largest}"
            "\n\nHint: move heavy imports out of the task modules, or run the step on another executor"
        )
        super().__init__(msg)
        self.unzipped_bytes, self.limit, self.packages = unzipped_bytes, limit, packages


@dataclass(frozen=True)
class BuiltArtifact:
    """A built deployment zip.

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
    """

    path: Path
    sha256_base64: str
    zipped_bytes: int
    unzipped_bytes: int
    packages: dict[str, int]


@dataclass(frozen=True)
class SchemeNeeds:
    """What functions need, beyond their own platform's stack, for the schemes their steps touch.

    Attributes
    ----------
    schemes
        The touched schemes that the builder does not already equip, sorted (``("az", "gs")``).
    carried
        The plugin distributions that serve them, to copy from this machine with their
        metadata (so their ``glacier`` entry points, and so the schemes, load inside the function).
    requirements
        Their :attr:`~glacier.plugins.registry.Scheme.function_requirements`, sorted, without repeats.
    plugins
        The other plugin distributions that the functions' modules use (their configs,
        executors and buckets are built when the module is imported inside the function),
        carried as code only: a module of a pipeline over three clouds imports in a
        function that touches one of them, and a step pulls in a provider's storage
        libraries only through :attr:`requirements`, for the schemes it touches.
    """

    schemes: tuple[str, ...] = ()
    carried: tuple[Carried, ...] = ()
    requirements: tuple[str, ...] = ()
    plugins: tuple[Carried, ...] = ()

    @property
    def all_carried(self) -> tuple[Carried, ...]:
        """:attr:`carried`, then the :attr:`plugins` not among them: every distribution to copy."""
        return (*self.carried, *(p for p in self.plugins if p not in self.carried))


def scheme_needs(functions: Iterable[FunctionSpec], *, equipped: Iterable[str]) -> SchemeNeeds:
    """The storage that ``functions`` need for schemes not served by the ``equipped`` distributions.

    Every URI a function's steps read or write (:func:`glacier.infra.access.function_access`:
    sources, targets, cache records) names a scheme; a scheme served by one of
    ``equipped`` (the builder's own package, whose requirements it already installs) or
    by Glacier's core (``file``, ``memory``) needs nothing. For the others, the
    distribution named by :attr:`Scheme.package <glacier.plugins.registry.Scheme.package>`
    is carried (its import package is the one holding :attr:`Scheme.storage`) and its
    :attr:`Scheme.function_requirements` are installed.

    Parameters
    ----------
    functions
        The functions one artifact serves.
    equipped
        Distributions whose schemes the artifact serves already (``{"glacier-aws"}``).

    Examples
    --------
    A function from a local file to a local file needs no storage beyond Glacier's core:

    >>> from glacier import Bucket, Pipeline, Provider
    >>> from glacier.config import LocalConfig
    >>> from glacier.infra.generate import FunctionSpec
    >>> @Provider(config=LocalConfig(root="/")).local().task
    ... def clean(df):
    ...     return df
    >>> pipeline = Pipeline(name="etl").source(Bucket.from_uri("file:///lake/raw.parquet")).transform(clean)
    >>> step = pipeline.to(Bucket.from_uri("file:///lake/out.parquet")).build().topological_sort()[0]
    >>> spec = FunctionSpec(step.task, step.task.executor, "clean", "etl", "clean", Path("etl.py"), [step])
    >>> needs = scheme_needs([spec], equipped={"glacier-aws"})
    >>> needs.schemes, needs.carried, needs.requirements
    ((), (), ())

    Its module (this example's) uses glacier-local's ``LocalConfig``, so that plugin comes as code:

    >>> [p.distribution for p in needs.plugins]
    ['glacier-local']
    """
    from glacier.infra.access import function_access
    from glacier.plugins.registry import scheme_for

    home = {*equipped, "glacier-core"}  # every artifact carries glacier-core
    found: dict[str, Any] = {}
    for spec in functions:
        access = function_access(spec)
        for uri in access.reads | access.writes:
            scheme = scheme_for(uri)
            if scheme.package and scheme.package not in home:
                found[scheme.name] = scheme
    carried: dict[str, Carried] = {}
    requirements: set[str] = set()
    for name in sorted(found):
        scheme = found[name]
        package = scheme.storage.partition(":")[0].split(".")[0]
        carried.setdefault(scheme.package, Carried(scheme.package, package, skip=frozenset({"testing"})))
        requirements.update(scheme.function_requirements)
    plugins = {dist: Carried(dist, package, skip=frozenset({"testing"})) for package, dist in _module_plugins(functions).items() if dist not in home}
    return SchemeNeeds(
        tuple(sorted(found)), tuple(carried[k] for k in sorted(carried)), tuple(sorted(requirements)), tuple(plugins[k] for k in sorted(plugins))
    )


def _module_plugins(functions: Iterable[FunctionSpec]) -> dict[str, str]:
    """Import package -> distribution of every installed plugin whose names the functions' modules hold.

    A module holds a plugin's names when it imported its config classes or modules, or
    built its providers, executors or tasks at import time: each value of the module's
    globals is traced to the package that defines it (a provider's and a task's through
    their config and executor).
    """
    import inspect

    from glacier.plugins.registry import get_plugin_manager
    from glacier.provider import Provider
    from glacier.task import Task

    owners = {getattr(plugin, "__name__", "").partition(".")[0]: dist.project_name for plugin, dist in get_plugin_manager().list_plugin_distinfo()}
    owners.pop("", None)
    used: dict[str, str] = {}
    for spec in functions:
        func = getattr(spec.task, "func", None)
        for value in list(getattr(func, "__globals__", {}).values()):
            if inspect.ismodule(value):
                names = [value.__name__]
            elif isinstance(value, type):
                names = [value.__module__]
            else:
                parts = [value]
                if isinstance(value, Provider):
                    parts.append(value.config)
                if isinstance(value, Task):
                    parts.append(value.executor)
                names = [type(part).__module__ for part in parts]
            for name in names:
                package = str(name).partition(".")[0]
                if package in owners:
                    used[package] = owners[package]
    return used


def cache_root() -> Path:
    """Glacier's cache folder: ``GLACIER_CACHE_DIR``, else ``~/.cache/glacier``."""
    return Path(os.environ.get("GLACIER_CACHE_DIR") or Path.home() / ".cache" / "glacier")


def build(spec: ArtifactSpec, modules: Sequence[tuple[str, Path]], out_dir: Path) -> BuiltArtifact:
    """Build ``spec``'s zip into ``out_dir / spec.filename``.

    Parameters
    ----------
    spec
        The platform, what to install and carry, and the size limit.
    modules
        ``(import name, source file)`` of each user module the functions import;
        a dotted module brings its whole top-level package (its ``.py`` files and
        ``py.typed`` only).
    out_dir
        Where the zip is written.

    Raises
    ------
    ArtifactTooLargeError
        Before anything is written, when the contents are over ``spec.size_limit``.
    ArtifactBuildError
        When pip cannot install the dependencies for the platform.

    Examples
    --------
    Not run as a test: pip downloads polars' wheels for the platform from the index.

    >>> spec = ArtifactSpec("Lambda", "f.zip", ("manylinux2014_x86_64",), "3.12", ("polars",))
    >>> build(spec, [("etl", Path("etl.py"))], Path("build")).path.name  # doctest: +SKIP
    'f.zip'
    """
    deps = _dependencies(spec)
    site = spec.site_packages.strip("/")
    inside = f"{site}/" if site else ""
    files: dict[str, Path | bytes] = {}
    owners: dict[str, str] = {}  # top-level entry (below site_packages) -> the package it is counted under
    for record in deps.glob("*.dist-info/RECORD"):
        dist = record.parent.name.split("-")[0].replace("_", "-")
        for line in record.read_text().splitlines():
            owners.setdefault(line.split("/")[0].split(",")[0], dist)
    _add(files, deps, site)
    for carried in spec.carried:
        root = Path(importlib.import_module(carried.package).__file__ or "").parent
        _add(files, root, f"{inside}{carried.package}", skip=_SKIP_DIRS | carried.skip)
        # Without dist-info, importlib.metadata cannot see the `glacier` entry points and
        # the provider's plugin would not load inside the function. RECORD and
        # direct_url are left out: they name this machine's paths.
        meta = importlib.metadata.distribution(carried.distribution)
        info = f"{carried.distribution.replace('-', '_')}-{meta.version}.dist-info"
        owners[info] = owners[carried.package] = carried.distribution
        for text in ("METADATA", "entry_points.txt"):
            if (content := meta.read_text(text)) is not None:
                _put(files, f"{inside}{info}/{text}", content.encode(), spec.label)
    for module, source in modules:
        _add_module(files, module, Path(source), spec.label)
    for arc, extra in spec.extra_files:
        _put(files, arc, extra, spec.label)

    sizes = {arc: len(src) if isinstance(src, bytes) else src.stat().st_size for arc, src in files.items()}
    packages: dict[str, int] = {}
    for arc, size in sizes.items():
        top = arc.removeprefix(inside).split("/")[0]
        pkg = owners.get(top, top.removesuffix(".py"))
        packages[pkg] = packages.get(pkg, 0) + size
    packages = dict(sorted(packages.items(), key=lambda kv: (-kv[1], kv[0])))
    unzipped = sum(sizes.values())
    if spec.size_limit is not None and unzipped > spec.size_limit:
        raise ArtifactTooLargeError(spec.filename, unzipped, spec.size_limit, packages, label=spec.label)

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / spec.filename
    # Compressing ~200 MB takes seconds; the same inputs give the same bytes, so a
    # zip built before from identical inputs is copied instead.
    cached = cache_root() / "artifact-zips" / f"{_content_key(files)}.zip"
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{spec.filename}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if cached.exists():
                with cached.open("rb") as src:
                    shutil.copyfileobj(src, fh, 1 << 20)
            else:
                _write_zip(fh, files)
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            spare = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
            shutil.copyfile(tmp, spare)
            os.replace(spare, cached)
            _prune_zips(cached.parent, keep=8)
        os.replace(tmp, target)  # readers never see a half-written zip
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    digest = hashlib.sha256()
    with target.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return BuiltArtifact(
        path=target,
        sha256_base64=base64.b64encode(digest.digest()).decode(),
        zipped_bytes=target.stat().st_size,
        unzipped_bytes=unzipped,
        packages=packages,
    )


# -- prune steps a provider may pass ----------------------------------------------------


def keep_only(folder: str, names: Sequence[str]) -> PruneStep:
    """A prune step that removes every subfolder of ``folder`` (relative to the installed
    tree) but ``names``; files beside them stay, and a missing ``folder`` is left alone.

    Examples
    --------
    >>> keep_only("botocore/data", ["s3", "sts"]).key
    "keep only ['s3', 'sts'] in botocore/data"
    """
    kept = sorted(set(names))

    def apply(site: Path) -> None:
        data = site / folder
        if not data.is_dir():
            return
        for entry in data.iterdir():
            if entry.is_dir() and entry.name not in kept:
                shutil.rmtree(entry)

    return PruneStep(f"keep only {kept} in {folder}", apply)


def strip_tools(triple: str) -> list[str]:
    """The ``strip`` programs on this machine that may read ELF files of CPU ``triple``
    (``"x86_64"``, ``"aarch64"``), best first."""
    names = ["llvm-strip", f"{triple}-linux-gnu-strip"]
    if os.uname().machine == triple:
        names.append("strip")
    return [name for name in names if shutil.which(name)]


def strip_shared_objects(tools: Sequence[str]) -> PruneStep:
    """A prune step that drops the symbol tables of the compiled libraries (``strip --strip-unneeded``).

    polars' runtime ships its full symbol table: 40 of its 178 MB. Stripping keeps every
    symbol the dynamic loader and Python need, so the library loads and runs the same;
    only native backtraces lose function names. ``tools`` are tried in order for each
    library (see :func:`strip_tools`); with none, the libraries are left as they are.
    """
    tools = list(tools)

    def apply(site: Path) -> None:
        if not tools:
            return
        for library in sorted(site.rglob("*.so*")):
            if library.is_symlink() or not library.is_file():
                continue
            for tool in tools:
                done = subprocess.run([tool, "--strip-unneeded", str(library)], capture_output=True, check=False)
                if done.returncode == 0:
                    break

    return PruneStep(f"strip --strip-unneeded with {tools}", apply)


# -- the zip ------------------------------------------------------------------------------


def _write_zip(fh: IO[bytes], files: dict[str, Path | bytes]) -> None:
    # Fixed order, timestamps, attributes and compression: the bytes depend only on contents.
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for arc in sorted(files):
            src = files[arc]
            info = zipfile.ZipInfo(arc, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = 6  # type: ignore[attr-defined]  # public only from 3.13
            info.create_system = 3  # unix, so external_attr holds a mode
            executable = not isinstance(src, bytes) and bool(src.stat().st_mode & 0o111)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            if isinstance(src, bytes):
                zf.writestr(info, src)
                continue
            info.file_size = src.stat().st_size  # decides zip64 up front, not by the platform
            with src.open("rb") as reader, zf.open(info, "w") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)


def _prune_zips(folder: Path, keep: int) -> None:
    """Keep only the ``keep`` most recently written zips: each is ~70 MB."""
    zips = sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in zips[keep:]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


def _content_key(files: dict[str, Path | bytes]) -> str:
    """A digest of every entry's name and content. Files of the dependency cache are
    immutable once built (their folder is named by their inputs), so their path and
    size stand for their content; everything else is read."""
    deps = str(_deps_root())
    digest = hashlib.sha256()
    for arc in sorted(files):
        src = files[arc]
        digest.update(arc.encode() + b"\0")
        if isinstance(src, bytes):
            digest.update(src)
        elif str(src).startswith(deps):
            digest.update(f"{src}:{src.stat().st_size}".encode())
        else:
            digest.update(src.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _put(files: dict[str, Path | bytes], arc: str, src: Path | bytes, label: str = "the") -> None:
    old = files.setdefault(arc, src)
    if old != src:  # e.g. a user module named like a dependency: one would silently win
        where = [str(x) if isinstance(x, Path) else "generated metadata" for x in (old, src)]
        msg = f"two sources for {arc} in the {label} artifact: {where[0]} and {where[1]}"
        raise GlacierError(f"{msg}\n\nHint: rename the user module that shadows a package")


def _walk(root: Path, skip: frozenset[str]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for filename in filenames:
            if not filename.endswith((".pyc", ".pyo")):
                yield Path(dirpath, filename)


def _add(files: dict[str, Path | bytes], root: Path, prefix: str, skip: frozenset[str] = frozenset({"__pycache__"})) -> None:
    for path in _walk(root, skip):
        rel = path.relative_to(root).as_posix()
        _put(files, f"{prefix}/{rel}" if prefix else rel, path)


def _add_module(files: dict[str, Path | bytes], module: str, source: Path, label: str) -> None:
    source = source.resolve()
    depth = module.count(".") + (source.name == "__init__.py")
    if depth == 0:
        _put(files, f"{module}.py", source, label)
        return
    top = source.parents[depth - 1]
    if top.name != module.split(".")[0]:
        msg = f"module {module!r} does not match its file {source}: expected it under a folder named {module.split('.')[0]!r}"
        raise GlacierError(msg)
    for path in _walk(top, frozenset({"__pycache__"})):
        if path.suffix == ".py" or path.name == "py.typed":  # a user's folder may hold data and notebooks
            _put(files, f"{top.name}/{path.relative_to(top).as_posix()}", path, label)


# -- the dependency tree ------------------------------------------------------------------


def _pins(requirements: Sequence[str]) -> tuple[list[str], list[str]]:
    """The requirements and, as constraints, everything they pull that is installed here.

    Pinning the whole closure (not only the named requirements) makes a cold cache
    rebuild the same tree on any day, and ships what the local runs were tested with.
    """
    reqs = [f"{n}=={importlib.metadata.version(n)}" for n in requirements]
    seen, todo, constraints = set(requirements), list(requirements), []
    while todo:
        for req in importlib.metadata.requires(todo.pop()) or []:
            dep = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")
            if "extra ==" in req or dep in seen:
                continue
            seen.add(dep)
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                constraints.append(f"{dep}=={importlib.metadata.version(dep)}")
                todo.append(dep)
    return reqs, sorted(constraints)


def _deps_root() -> Path:
    return cache_root() / "artifact-deps"


def _dependencies(spec: ArtifactSpec) -> Path:
    """The pruned dependency tree for ``spec``'s platform, built once and cached."""
    reqs, constraints = _pins(spec.requirements)
    key_data = {"reqs": reqs, "constraints": constraints, "platforms": list(spec.platforms), "python": spec.python_version,
                "excluded": sorted(spec.excluded), "prune": [step.key for step in spec.prune], "format": _CACHE_FORMAT}  # fmt: skip
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:24]
    root = _deps_root()
    final = root / key
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds the tree built
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}."))
        try:
            (tmp / "constraints.txt").write_text("\n".join(constraints) + "\n")
            platforms = [arg for tag in spec.platforms for arg in ("--platform", tag)]
            command = [sys.executable, "-m", "pip", "install", "--target", str(tmp / "site"),
                       *platforms, "--implementation", "cp", "--python-version", spec.python_version,
                       "--only-binary=:all:", "--no-compile", "--no-input", "--disable-pip-version-check",
                       "-c", str(tmp / "constraints.txt"), *reqs]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                msg = f"pip could not install the {spec.label} dependencies for Python {spec.python_version} on {', '.join(spec.platforms)}"
                raise ArtifactBuildError(msg, command, done.stdout + done.stderr)
            site = tmp / "site"
            for entry in site.iterdir():
                if entry.name.split("-")[0].removesuffix(".libs").removesuffix(".py").lower() in spec.excluded:
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            for cache in sorted(site.rglob("__pycache__"), reverse=True):
                shutil.rmtree(cache)
            for step in spec.prune:
                step.apply(site)
            site.rename(final)  # atomic: the cache holds whole trees only
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
