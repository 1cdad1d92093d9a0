"""HCL text for a :class:`~glacier.infra.terraform.TerraformModule`, written by python-hcl2.

python-hcl2's writer (``hcl2.dumps``) drops comments, so this module builds
python-hcl2's document tree from the module's data, adds the checkov skip comments
and the comments of nested blocks to that tree as comment nodes (the library's own
``NewLineOrCommentRule``), and lets the library reconstruct the text. Nothing is
written by pasting strings. It also works around two gaps of python-hcl2 8.1.4: it
loses an escaped quote before ``${``, and it reads Terraform's escapes ``$${`` and
``%%{`` only when a ``}`` follows them in the string (Terraform needs none). Where no
``}`` follows, the literal ``${`` / ``%{`` is written as ``$\\u007b`` / ``%\\u007b``:
the same text to Terraform, by its own ``\\u`` escape, and readable by both parsers.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from glacier.infra.terraform import (
    _BARE_KEY,
    _KEYWORDS,
    _STATIC_LIFECYCLE,
    _STATIC_META,
    HEADER,
    Block,
    Skip,
    _bare,
    _end_of_sequence,
    _escape_chars,
    _is_single_interpolation,
)

if TYPE_CHECKING:
    from hcl2.deserializer import BaseDeserializer

    from glacier.infra.terraform import TerraformModule

__all__ = ["render", "document"]

#: A block body's comments in python-hcl2's data model: a key its deserializer skips
#: (``hcl2.const.COMMENTS_KEY``), so the comment nodes are added to the tree here.
_COMMENTS: Final = "__comments__"


def render(module: TerraformModule) -> str:
    """The module as HCL text (``main.tf``)."""
    return _render_hcl(document(module), module.skips)


def document(module: TerraformModule) -> dict[str, Any]:
    """The module in python-hcl2's data model (what ``hcl2.loads`` returns)."""
    doc: dict[str, Any] = {}
    settings: dict[str, Any] = {"__is_block__": True}
    if module.required_version is not None:
        settings["required_version"] = _hcl_literal(module.required_version)
    if module._required_providers:
        settings["required_providers"] = [
            {
                name: {k: _hcl_literal(v) for k, v in sorted(requirement.items())}
                for name, requirement in sorted(module._required_providers.items())
            }
            | {"__is_block__": True}
        ]
    if len(settings) > 1:
        doc["terraform"] = [settings]
    if module._providers:
        doc["provider"] = [
            {_hcl_label(name): _hcl_body(body)}
            for (name, _), body in sorted(module._providers.items())
        ]
    if module._variables:
        doc["variable"] = [
            {
                _hcl_label(name): _hcl_body(
                    body, static={"type"}, literal={"default", "description"}
                )
            }
            for name, body in sorted(module._variables.items())
        ]
    if module._locals:
        doc["locals"] = [
            {name: _hcl_value(value) for name, value in sorted(module._locals.items())}
            | {"__is_block__": True}
        ]
    for key, table in (("data", module._data), ("resource", module._resources)):
        if table:
            doc[key] = [
                {_hcl_label(type_): {_hcl_label(name): _hcl_body(body, meta=True)}}
                for (type_, name), body in sorted(table.items())
            ]
    if module._outputs:
        doc["output"] = [
            {_hcl_label(name): _hcl_body(body, static={"depends_on"}, literal={"description"})}
            for name, body in sorted(module._outputs.items())
        ]
    return doc


# -- HCL through python-hcl2 ------------------------------------------------------


def _escape_template(text: str) -> str:
    """Escape a JSON-syntax template for an HCL quoted template.

    Literal runs are escaped; ``${...}`` and ``%{...}`` sequences are kept as they
    are, since their content is an expression, not text.
    """
    parts: list[str] = []
    literal_start = i = 0
    while i < len(text):
        if text.startswith(("$${", "%%{"), i):
            i += 3
        elif text.startswith(("${", "%{"), i):
            parts.append(_escape_run(text[literal_start:i]))
            end = _end_of_sequence(text, i)
            parts.append(text[i:end])
            literal_start = i = end
        else:
            i += 1
    parts.append(_escape_run(text[literal_start:]))
    return "".join(parts)


def _escape_run(run: str) -> str:
    """Escape a literal run of a JSON-syntax template (``$${`` is a literal ``${``) for HCL.

    Terraform reads ``$${`` and ``%%{`` as literal ``${`` and ``%{``; python-hcl2 only
    when a ``}`` follows in the string, so without one the brace is written ``\\u007b``.
    """
    parts: list[str] = []
    i = 0
    while i < len(run):
        if run.startswith(("$${", "%%{"), i):
            parts.append(run[i : i + 3] if "}" in run[i + 3 :] else run[i] + "\\u007b")
            i += 3
        else:
            parts.append(_escape_chars(run[i]))
            i += 1
    return "".join(parts)


def _hcl_literal(text: str) -> str:
    return '"' + _escape_run(text.replace("${", "$${").replace("%{", "%%{")) + '"'


def _hcl_label(text: str) -> str:
    return '"' + _escape_chars(text) + '"'


def _hcl_key(key: str) -> str:
    if _BARE_KEY.fullmatch(key) and key not in _KEYWORDS:
        return key
    return '"' + _escape_template(key) + '"'


def _hcl_value(value: Any, mode: str = "template") -> Any:
    """A plain value in python-hcl2's data model.

    python-hcl2 reads a string wrapped in quotes as a quoted template and an
    unquoted ``${...}`` as a bare expression.
    """
    if isinstance(value, str):
        if mode == "literal":
            return _hcl_literal(value)
        if mode == "static":
            return "${" + _bare(value) + "}"
        if _is_single_interpolation(value):
            return value
        return '"' + _escape_template(value) + '"'
    if isinstance(value, dict):
        return {_hcl_key(k): _hcl_value(value[k], mode) for k in sorted(value)}
    if isinstance(value, list):
        return [_hcl_value(v, mode) for v in value]
    return value


def _hcl_body(
    body: dict[str, Any],
    *,
    static: Collection[str] = frozenset(),
    literal: Collection[str] = frozenset(),
    meta: bool = False,
) -> dict[str, Any]:
    """A block body: attributes first, then nested blocks, each sorted by name."""
    static_keys = set(static) | (_STATIC_META if meta else set())
    attributes: dict[str, Any] = {}
    blocks: dict[str, Any] = {}
    for key in sorted(body):
        value = body[key]
        nested = [value] if isinstance(value, Block) else value
        if isinstance(nested, list) and nested and isinstance(nested[0], Block):
            inner_static: Collection[str] = (
                _STATIC_LIFECYCLE if meta and key == "lifecycle" else frozenset()
            )
            blocks[key] = [_hcl_block(b, static=inner_static) for b in nested]
            continue
        mode = "static" if key in static_keys else "literal" if key in literal else "template"
        attributes[key] = _hcl_value(value, mode)
    return attributes | blocks | {"__is_block__": True}


def _hcl_block(block: Block, *, static: Collection[str]) -> dict[str, Any]:
    result: dict[str, Any] = _hcl_body(block.body, static=static)
    if block.comments:
        result[_COMMENTS] = list(block.comments)
    for label in reversed(block.labels):
        result = {_hcl_label(label): result}
    return result


@cache
def _deserializer() -> BaseDeserializer:
    from hcl2.deserializer import BaseDeserializer, DeserializerOptions
    from hcl2.rules.strings import StringRule

    class QuotedTemplatesByParser(BaseDeserializer):
        """python-hcl2's deserializer, reading every quoted string with its parser.

        python-hcl2 8.1.4 splits quoted strings around ``${`` with a regex and then
        strips a quote from each end of every piece, which eats an escaped quote
        just before an interpolation (``"say \\"${x}\\""``). Its parser path, used
        by the library itself for ``%{`` directives, reads such strings right.
        """

        def _deserialize_string(self, value: str) -> StringRule:
            return self._deserialize_string_via_parser(value)

    return QuotedTemplatesByParser(DeserializerOptions(object_elements_trailing_comma=False))


def _block_body(item: Any) -> dict[str, Any] | None:
    """The body of one block in python-hcl2's data (under its labels), or None for a value."""
    while isinstance(item, dict) and not item.get("__is_block__"):
        if len(item) != 1:
            return None
        item = next(iter(item.values()))
    return item if isinstance(item, dict) else None


def _render_hcl(document: dict[str, Any], skips: Sequence[Skip]) -> str:
    """Turn python-hcl2 data into text, adding the header, skip and block comments."""
    import hcl2
    from hcl2.formatter import BaseFormatter, FormatterOptions
    from hcl2.rules.base import BlockRule, BodyRule
    from hcl2.rules.whitespace import NewLineOrCommentRule

    tree = _deserializer().load_python(document)
    BaseFormatter(FormatterOptions(open_empty_blocks=False)).format_tree(tree)
    step = FormatterOptions().indent_length

    def insert(body: BodyRule, index: int, nodes: list[NewLineOrCommentRule]) -> None:
        body.children[index:index] = nodes
        for position, child in enumerate(body.children):
            if child is not None:
                child.set_index(position)
                child.set_parent(body)

    def line(text: str) -> NewLineOrCommentRule:
        return NewLineOrCommentRule.from_string(text)

    def comment(body: BodyRule, texts: list[str], depth: int) -> None:
        """Write ``texts`` as comment lines at the top of a block ``depth`` levels deep."""
        indent = "\n" + " " * (step * depth)
        nodes: list[NewLineOrCommentRule] = []
        for text in texts:
            nodes += [line("# " + text), line(indent)]
        if body.children:
            # The formatter opens every non-empty body with a newline-and-indent.
            if not isinstance(body.children[0], NewLineOrCommentRule):
                msg = "python-hcl2 formatted a block body in an unexpected way"
                raise RuntimeError(msg)
            insert(body, 1, nodes)
        else:
            nodes[-1] = line("\n" + " " * (step * (depth - 1)))
            insert(body, 0, [line(indent), *nodes])

    def comment_nested(body: BodyRule, data: dict[str, Any], depth: int) -> None:
        # The tree holds the blocks of ``data`` in its order, each list expanded.
        rules = iter(child for child in body.children if isinstance(child, BlockRule))
        for value in data.values():
            bodies = [_block_body(item) for item in value] if isinstance(value, list) and value else []
            if not bodies or None in bodies:
                continue  # an attribute, not a list of blocks
            for inner in bodies:
                rule = next(rules)
                assert inner is not None
                if inner.get(_COMMENTS):
                    comment(rule.body, inner[_COMMENTS], depth + 1)
                comment_nested(rule.body, inner, depth + 1)

    comment_nested(tree.body, document, 0)

    comments: dict[tuple[str, ...], list[str]] = {}
    for skip in skips:
        parts = skip.address.split(".")
        key = ("data", *parts[1:]) if parts[0] == "data" else ("resource", *parts)
        comments.setdefault(key, []).append(skip.comment)

    for child in tree.body.children:
        if not isinstance(child, BlockRule):
            continue
        key = tuple(label.serialize().strip('"') for label in child.labels)
        if key in comments:
            comment(child.body, comments.pop(key), 1)
    if comments:
        msg = f"skips for blocks that were not written: {sorted(comments)}"
        raise RuntimeError(msg)

    insert(tree.body, 0, [line(HEADER), line("\n\n")])
    _strip_blank_line_indents(tree)
    return hcl2.reconstruct(tree).rstrip("\n") + "\n"


def _strip_blank_line_indents(rule: Any) -> None:
    """Drop the indentation python-hcl2's formatter leaves on blank lines."""
    from hcl2.rules.abstract import LarkRule
    from hcl2.rules.whitespace import NewLineOrCommentRule

    children = rule.children
    for i, child in enumerate(children):
        if isinstance(child, LarkRule) and not isinstance(child, NewLineOrCommentRule):
            _strip_blank_line_indents(child)
            continue
        following = children[i + 1] if i + 1 < len(children) else None
        if (
            isinstance(child, NewLineOrCommentRule)
            and isinstance(following, NewLineOrCommentRule)
            and child.serialize().isspace()
            and following.serialize().startswith("\n")
        ):
            stripped = NewLineOrCommentRule.from_string(child.serialize().rstrip(" "))
            stripped.set_index(i)
            stripped.set_parent(rule)
            children[i] = stripped
