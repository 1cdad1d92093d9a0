"""The Lambda deployment artifact: the user's modules, Glacier and its runtime dependencies in one zip.

The dependencies are installed by pip *for Lambda's platform* (manylinux, the runtime's
CPython version, the function's architecture), not copied from this machine, and are
cached so that a second build runs no pip at all. The zip is deterministic (same inputs,
same bytes), so Terraform's ``source_code_hash`` changes only when the code does.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from glacier.errors import GlacierError

from glacier_aws.config import LAMBDA_LIMITS, LambdaConfig

__all__ = ["Artifact", "ArtifactBuildError", "ArtifactTooLargeError", "build_artifact", "REQUIREMENTS", "EXCLUDED", "BOTOCORE_SERVICES"]

#: What the handler imports beyond the stdlib and Glacier, pinned to the versions installed here.
REQUIREMENTS = ("polars", "pluggy", "fsspec", "s3fs")

#: Top-level names removed after pip: Lambda's runtime has boto3 (and s3transfer); the rest
#: the handler never imports and would eat the 250 MB budget (pyarrow alone is 171 MB).
#: botocore stays: aiobotocore pins a narrow botocore range that Lambda's own may miss.
EXCLUDED = frozenset({"boto3", "s3transfer", "pyarrow", "pandas", "numpy", "rich", "pygments", "bin"})

#: The botocore service models the handler can load: S3 (s3fs), and the services its
#: credential chain calls (STS for web identity and assumed roles, SSO). botocore ships
#: 400-odd others, 27 MB the handler can never import.
BOTOCORE_SERVICES = frozenset({"s3", "sts", "sso", "sso-oidc"})

# polars 2.1 and every compiled dependency ship manylinux2014 (glibc 2.17) wheels, which run
# on both Lambda OS images (Amazon Linux 2 for python3.11 has glibc 2.26). Adding
# manylinux_2_28 would let pip pick wheels that python3.11's image cannot load.
_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_GLACIER_DISTS = (("glacier-core", "glacier"), ("glacier-aws", "glacier_aws"))
_SKIP_DIRS = frozenset({"__pycache__", "tests"})
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_LIMIT = cast(int, LAMBDA_LIMITS["unzipped_bytes"])  # LAMBDA_LIMITS mixes ints and ranges
_CACHE_FORMAT = 2  # bump when the pruning below changes, so old caches are not reused


class ArtifactBuildError(GlacierError):
    """pip could not install the dependencies for Lambda's platform.

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
    """The artifact is over Lambda's unzipped size limit.

    Attributes
    ----------
    unzipped_bytes, limit
        The artifact's size and the limit, in bytes.
    packages
        Package name -> unzipped bytes, largest first.
    """

    def __init__(self, name: str, unzipped_bytes: int, limit: int, packages: dict[str, int]) -> None:
        largest = "\n".join(f"  {pkg:<28} {size / 2**20:8.1f} MB" for pkg, size in list(packages.items())[:8])
        msg = (
            f"Lambda artifact {name} is {unzipped_bytes:,} bytes ({unzipped_bytes / 2**20:.1f} MB) unzipped, "
            f"over the limit of {limit:,} bytes ({limit / 2**20:.0f} MB). Largest packages:\n{largest}"
            "\n\nHint: move heavy imports out of the task modules, or run the step on another executor"
        )
        super().__init__(msg)
        self.unzipped_bytes, self.limit, self.packages = unzipped_bytes, limit, packages


@dataclass(frozen=True)
class Artifact:
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

    path: Path
    sha256_base64: str
    zipped_bytes: int
    unzipped_bytes: int
    packages: dict[str, int]
    runtime: str
    architecture: str


def build_artifact(
    modules: Sequence[tuple[str, Path]],
    config: LambdaConfig,
    out_dir: Path,
    *,
    name: str = "glacier-lambda",
    limit: int = _LIMIT,
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

    Raises
    ------
    ArtifactTooLargeError
        Before anything is written, when the contents are over ``limit``.
    ArtifactBuildError
        When pip cannot install the dependencies for the platform.

    Examples
    --------
    >>> art = build_artifact([("etl", Path("etl.py"))], LambdaConfig(), Path("build"))  # doctest: +SKIP
    >>> art.path.name  # doctest: +SKIP
    'glacier-lambda-python3.12-x86_64.zip'
    """
    deps = _dependencies(config)
    files: dict[str, Path | bytes] = {}
    owners: dict[str, str] = {}  # top-level zip entry -> the package it is counted under
    for record in deps.glob("*.dist-info/RECORD"):
        dist = record.parent.name.split("-")[0].replace("_", "-")
        for line in record.read_text().splitlines():
            owners.setdefault(line.split("/")[0].split(",")[0], dist)
    _add(files, deps, "")
    for dist, package in _GLACIER_DISTS:
        root = Path(importlib.import_module(package).__file__ or "").parent
        _add(files, root, package, skip=_SKIP_DIRS | ({"testing"} if package == "glacier_aws" else set()))
        # Without dist-info, importlib.metadata cannot see the `glacier` entry point and the
        # AWS plugin (s3://) would not load inside Lambda. RECORD and direct_url are left out:
        # they name this machine's paths.
        meta = importlib.metadata.distribution(dist)
        info = f"{dist.replace('-', '_')}-{meta.version}.dist-info"
        owners[info] = owners[package] = dist
        for text in ("METADATA", "entry_points.txt"):
            if (content := meta.read_text(text)) is not None:
                _put(files, f"{info}/{text}", content.encode())
    for module, source in modules:
        _add_module(files, module, Path(source))

    sizes = {arc: len(src) if isinstance(src, bytes) else src.stat().st_size for arc, src in files.items()}
    packages: dict[str, int] = {}
    for arc, size in sizes.items():
        top = arc.split("/")[0]
        pkg = owners.get(top, top.removesuffix(".py"))
        packages[pkg] = packages.get(pkg, 0) + size
    packages = dict(sorted(packages.items(), key=lambda kv: (-kv[1], kv[0])))
    unzipped = sum(sizes.values())
    filename = f"{name}-{config.runtime}-{config.architecture}.zip"
    if unzipped > limit:
        raise ArtifactTooLargeError(filename, unzipped, limit, packages)

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / filename
    # Compressing ~200 MB takes seconds; the same inputs give the same bytes, so a
    # zip built before from identical inputs is copied instead.
    cached = _cache_root().parent / "lambda-zips" / f"{_content_key(files)}.zip"
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{filename}.", suffix=".tmp")
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
            _prune(cached.parent, keep=8)
        os.replace(tmp, target)  # readers never see a half-written zip
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    digest = hashlib.sha256()
    with target.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return Artifact(
        path=target,
        sha256_base64=base64.b64encode(digest.digest()).decode(),
        zipped_bytes=target.stat().st_size,
        unzipped_bytes=unzipped,
        packages=packages,
        runtime=config.runtime,
        architecture=config.architecture,
    )


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


def _prune(folder: Path, keep: int) -> None:
    """Keep only the ``keep`` most recently written zips: each is ~70 MB."""
    zips = sorted(folder.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in zips[keep:]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


def _content_key(files: dict[str, Path | bytes]) -> str:
    """A digest of every entry's name and content. Files of the dependency cache are
    immutable once built (their folder is named by their inputs), so their path and
    size stand for their content; everything else is read."""
    deps = str(_cache_root())
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


def _put(files: dict[str, Path | bytes], arc: str, src: Path | bytes) -> None:
    old = files.setdefault(arc, src)
    if old != src:  # e.g. a user module named like a dependency: one would silently win
        where = [str(x) if isinstance(x, Path) else "generated metadata" for x in (old, src)]
        msg = f"two sources for {arc} in the Lambda artifact: {where[0]} and {where[1]}"
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


def _add_module(files: dict[str, Path | bytes], module: str, source: Path) -> None:
    source = source.resolve()
    depth = module.count(".") + (source.name == "__init__.py")
    if depth == 0:
        _put(files, f"{module}.py", source)
        return
    top = source.parents[depth - 1]
    if top.name != module.split(".")[0]:
        msg = f"module {module!r} does not match its file {source}: expected it under a folder named {module.split('.')[0]!r}"
        raise GlacierError(msg)
    for path in _walk(top, frozenset({"__pycache__"})):
        if path.suffix == ".py" or path.name == "py.typed":  # a user's folder may hold data and notebooks
            _put(files, f"{top.name}/{path.relative_to(top).as_posix()}", path)


def _pins() -> tuple[list[str], list[str]]:
    """The requirements and, as constraints, everything they pull that is installed here.

    Pinning the whole closure (not only the four names) makes a cold cache rebuild the
    same tree on any day, and ships what the local runs were tested with.
    """
    reqs = [f"{n}=={importlib.metadata.version(n)}" for n in REQUIREMENTS]
    seen, todo, constraints = set(REQUIREMENTS), list(REQUIREMENTS), []
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


def _cache_root() -> Path:
    return Path(os.environ.get("GLACIER_CACHE_DIR") or Path.home() / ".cache" / "glacier") / "lambda-deps"


def _dependencies(config: LambdaConfig) -> Path:
    """The pruned dependency tree for ``config``'s platform, built once and cached."""
    reqs, constraints = _pins()
    platform = _PLATFORMS[config.architecture]
    key_data = {"reqs": reqs, "constraints": constraints, "platform": platform, "python": config.python_version,
                "excluded": sorted(EXCLUDED), "services": sorted(BOTOCORE_SERVICES), "strip": _strip_tools(config.architecture),
        "format": _CACHE_FORMAT}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:24]
    root = _cache_root()
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
            command = [sys.executable, "-m", "pip", "install", "--target", str(tmp / "site"),
                       "--platform", platform, "--implementation", "cp", "--python-version", config.python_version,
                       "--only-binary=:all:", "--no-compile", "--no-input", "--disable-pip-version-check",
                       "-c", str(tmp / "constraints.txt"), *reqs]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                msg = f"pip could not install the Lambda dependencies for {config.runtime} on {config.architecture}"
                raise ArtifactBuildError(msg, command, done.stdout + done.stderr)
            site = tmp / "site"
            for entry in site.iterdir():
                if entry.name.split("-")[0].removesuffix(".libs").removesuffix(".py").lower() in EXCLUDED:
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            for cache in sorted(site.rglob("__pycache__"), reverse=True):
                shutil.rmtree(cache)
            _prune_botocore_models(site)
            _strip_shared_objects(site, config.architecture)
            site.rename(final)  # atomic: the cache holds whole trees only
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _prune_botocore_models(site: Path) -> None:
    """Remove every botocore service model but :data:`BOTOCORE_SERVICES` (files beside them, such as
    ``endpoints.json``, stay)."""
    data = site / "botocore" / "data"
    if not data.is_dir():
        return
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
            shutil.rmtree(entry)


def _strip_tools(architecture: str) -> list[str]:
    """The ``strip`` programs on this machine that may read ``architecture``'s ELF files, best first."""
    triple = {"x86_64": "x86_64", "arm64": "aarch64"}[architecture]
    names = ["llvm-strip", f"{triple}-linux-gnu-strip"]
    if os.uname().machine == triple:
        names.append("strip")
    return [name for name in names if shutil.which(name)]


def _strip_shared_objects(site: Path, architecture: str) -> None:
    """Drop the symbol tables of the compiled libraries (``strip --strip-unneeded``).

    polars' runtime ships its full symbol table: 40 of its 178 MB. Stripping keeps every
    symbol the dynamic loader and Python need, so the library loads and runs the same;
    only native backtraces lose function names. Without a strip program that reads the
    target's ELF files the libraries are left as they are (and the artifact is larger).
    """
    tools = _strip_tools(architecture)
    if not tools:
        return
    for library in sorted(site.rglob("*.so*")):
        if library.is_symlink() or not library.is_file():
            continue
        for tool in tools:
            done = subprocess.run([tool, "--strip-unneeded", str(library)], capture_output=True, check=False)
            if done.returncode == 0:
                break
