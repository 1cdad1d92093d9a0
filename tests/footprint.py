"""What the test suite leaves behind: files it wrote into the checkout or the home directory.

The suite may write only into its temporary directories and into Glacier's
documented cache (``GLACIER_CACHE_DIR``, by default ``~/.cache/glacier``). The
repository's ``conftest.py`` takes a :func:`snapshot` of the checkout and of
``$HOME`` when the session starts and fails the session if :func:`changes` finds
anything new or rewritten at its end.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

#: Folders of the home directory that belong to the tools running the suite, not to it:
#: the Python and toolchains themselves, hatch's environments and uv's cache (filled by
#: ``hatch test`` before any test starts), and hatch's own settings.
TOOLS = (".pyenv", ".rustup", ".cargo", ".m2", ".local/share/hatch", ".cache/uv", ".cache/hatch", ".config/hatch", ".claude")

#: Written by Python and pytest themselves wherever code is imported or collected.
BYTECODE = ("__pycache__", ".pytest_cache")


def snapshot(root: Path, skip: Iterable[str] = ()) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its (mtime in ns, size), but for the ``skip`` folders
    (paths relative to ``root``), ``.git`` and bytecode folders."""
    skipped = {str(Path(s)) for s in skip}
    files: dict[str, tuple[int, int]] = {}
    for folder, dirs, names in os.walk(root):
        here = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if d not in (".git", *BYTECODE) and str(here / d) not in skipped]
        for name in names:
            try:
                stat = (Path(folder) / name).lstat()
            except OSError:
                continue  # removed while we looked
            files[str(here / name)] = (stat.st_mtime_ns, stat.st_size)
    return files


def changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """The files that appeared or were rewritten between two snapshots, sorted."""
    return sorted(path for path, stat in after.items() if before.get(path) != stat)


def cache_dir() -> Path:
    """Glacier's documented cache, where the suite may write (see ``glacier.infra.artifact``)."""
    return Path(os.environ.get("GLACIER_CACHE_DIR") or Path.home() / ".cache" / "glacier")


def summary(root: Path, paths: list[str], shown: int = 20) -> list[str]:
    """The written ``paths`` (relative to ``root``), folding each folder two levels down that
    holds more than three of them into one line with its count."""
    folders: dict[str, list[str]] = {}
    for path in paths:
        folders.setdefault("/".join(Path(path).parts[:2]), []).append(path)
    lines = []
    for folder, files in sorted(folders.items()):
        lines += [f"{root}/{f}" for f in files] if len(files) <= 3 else [f"{root}/{folder}/... ({len(files)} files)"]
    return lines[:shown] + ([f"... and {len(lines) - shown} more"] if len(lines) > shown else [])
