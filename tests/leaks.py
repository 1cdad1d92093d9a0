"""What Glacier wrote, and which secrets it holds: the check behind the tests that plant credentials.

A test plants recognisable credentials where Glacier's code can see them (the
environment of this process or of a deployed function), runs the user's flow, then
reads everything the flow wrote and asks which of the secrets turn up in it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path


def files_written(*folders: Path, open_zips: bool = False) -> dict[str, bytes]:
    """Every file below ``folders``, by path, with its bytes.

    A zip is left out, or with ``open_zips`` read member by member (as ``path!member``),
    since its compressed bytes would hide a secret from a plain search.
    """
    written: dict[str, bytes] = {}
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.suffix != ".zip":
                written[str(path)] = path.read_bytes()
            elif open_zips:
                with zipfile.ZipFile(path) as archive:
                    written.update({f"{path}!{name}": archive.read(name) for name in archive.namelist()})
    return written


def leaks(secrets: Iterable[str], written: dict[str, bytes]) -> list[str]:
    """``"<where>: <secret>"`` for every secret found in what was written, sorted; empty when none leaked."""
    return sorted(f"{name}: {secret}" for secret in secrets for name, data in written.items() if secret.encode() in data)
