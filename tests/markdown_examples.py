"""Turn a markdown page's python code blocks into one script that runs them in order.

Every fenced ``python`` block of a page runs, top to bottom, in one fresh namespace (a
reader goes through a page the same way). The script keeps the page's line numbers: each
block's lines sit at the lines they have in the page and everything else is blank, so a
traceback points at the page itself. Other blocks (``bash``, ``console``, ``text``...) are
left alone. An HTML comment on the line just before a fence changes what happens to it:

- ``<!-- glacier: skip reason="..." -->``: the block does not run (a reason is required);
- ``<!-- glacier: file="pipeline.py" -->``: the block is written to that file in the
  working directory instead of being run (a page that says "save this as pipeline.py").
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
_MARK = re.compile(r'^\s*<!--\s*glacier:\s*(?P<what>skip|file)(?:\s+(?:reason|name)?=?"(?P<arg>[^"]*)")?\s*-->\s*$')
_FILE = re.compile(r'^\s*<!--\s*glacier:\s*file="(?P<arg>[^"]+)"\s*-->\s*$')
_SKIP = re.compile(r'^\s*<!--\s*glacier:\s*skip(?:\s+reason="(?P<arg>[^"]*)")?\s*-->\s*$')


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, first code line (1-based), code and marker."""

    lang: str
    line: int
    code: str
    skip: str | None = None
    file: str | None = None


def blocks(text: str, where: str = "<page>") -> list[Block]:
    """The fenced code blocks of ``text``, with the marker each carries."""
    lines = text.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent, lang = i, len(m["indent"]), m["lang"]
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        if i == len(lines):
            msg = f"{where}:{fence + 1}: a code block is never closed"
            raise ValueError(msg)
        i += 1
        before = lines[fence - 1] if fence else ""
        skip = file = None
        if (s := _SKIP.match(before)) is not None:
            if not s["arg"]:
                msg = f'{where}:{fence}: a skipped block needs its reason: <!-- glacier: skip reason="..." -->'
                raise ValueError(msg)
            skip = s["arg"]
        elif (f := _FILE.match(before)) is not None:
            file = f["arg"]
        elif "glacier:" in before and before.strip().startswith("<!--"):
            msg = f"{where}:{fence}: unknown marker {before.strip()!r}; use skip reason=\"...\" or file=\"...\""
            raise ValueError(msg)
        found.append(Block(lang, fence + 2, textwrap.dedent("\n".join(body)), skip, file))
    return found


def script(page: Path) -> str:
    """The page's python blocks as one script, each block at the page's own line numbers."""
    text = page.read_text(encoding="utf-8")
    out = [""] * (len(text.splitlines()) + 1)
    for block in blocks(text, str(page)):
        if block.lang != "python" or block.skip is not None:
            continue
        if block.file is not None:
            # One line at the fence: written only by the page's own run, never when a
            # worker process imports this script to find a task.
            out[block.line - 2] = f'if __name__ == "__main__": __import__("pathlib").Path({block.file!r}).parent.mkdir(parents=True, exist_ok=True); __import__("pathlib").Path({block.file!r}).write_text({block.code + chr(10)!r})'
            continue
        for n, code in enumerate(block.code.splitlines()):
            out[block.line - 1 + n] = code
    return "\n".join(out) + "\n"
