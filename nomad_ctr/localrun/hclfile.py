"""Read HCL files (python-hcl2) into plain Python values, the way Nomad's job parser
stores a `config {}` block (fact sheet §9 step 1): attributes become their evaluated
values, every nested block `name "l1" "l2" { ... }` becomes one element of a list under
`name`, nested by label (`{"l1": {"l2": {...}}}`).

Values: str, int, Decimal (non-integral numbers, exact like cty's), bool, None, list,
dict. Strings are HCL templates: `${NAME}` is replaced from the variables given
(`NOMAD_TASK_DIR`, `env.HOME`, `meta.x`, ...), `$${` and `%%{` are escapes. Other
expressions (function calls, arithmetic, `%{ if }` directives) are refused with an
error naming the attribute: localrun is not an HCL evaluator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = ["Block", "Body", "HclError", "evaluate", "evaluate_body", "parse_file", "parse_text"]

_META_KEYS = {
    "__is_block__",
    "__comments__",
    "__inline_comments__",
    "__start_line__",
    "__end_line__",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\Z")
_INDEXED = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\[\s*"([^"]*)"\s*\]\Z')
_HEREDOC = re.compile(r'"<<(-?)([A-Za-z][A-Za-z0-9._-]*)\r?\n(.*?)[ \t]*\2"\Z', re.DOTALL)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


class HclError(ValueError):
    """A file that cannot be read, or a value localrun cannot evaluate; the message
    names the file or the attribute path."""


@dataclass
class Block:
    type: str
    labels: list[str]
    body: Body


@dataclass
class Body:
    """One HCL body: attributes (raw python-hcl2 values, not evaluated yet) and blocks."""

    attributes: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def blocks_of(self, type_: str) -> list[Block]:
        return [b for b in self.blocks if b.type == type_]

    def one_block(self, type_: str, where: str) -> Block | None:
        found = self.blocks_of(type_)
        if len(found) > 1:
            raise HclError(f"{where}: more than one {type_} block")
        return found[0] if found else None


def parse_text(text: str, filename: str = "<string>") -> Body:
    import hcl2  # imported here: lark's grammar load is not free

    options = hcl2.SerializationOptions(
        with_comments=False,
        preserve_heredocs=True,  # we render them: python-hcl2 drops the last newline
        preserve_scientific_notation=False,
    )
    try:
        raw = hcl2.loads(text, serialization_options=options)
    except Exception as exc:  # noqa: BLE001 - lark raises many kinds; all mean "not valid HCL"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HclError(f"{filename}: not valid HCL: {first}") from None
    return _body(raw)


def parse_file(path: str | Path) -> Body:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise HclError(f"{path}: {exc.strerror or exc}") from None
    return parse_text(text, str(path))


# ---- python-hcl2 dicts -> Body -------------------------------------------------------------


def _block_path(item: Any) -> tuple[list[str], dict[str, Any]] | None:
    """If `item` is a block as python-hcl2 renders it ({"\"l1\"": {... __is_block__}}),
    its labels and body dict; else None (an attribute value)."""
    labels: list[str] = []
    while isinstance(item, dict):
        if item.get("__is_block__") is True:
            return labels, item
        keys = [k for k in item if k not in _META_KEYS]
        if len(keys) != 1 or not isinstance(item[keys[0]], dict):
            return None
        labels.append(_key(keys[0]))
        item = item[keys[0]]
    return None


def _body(raw: Mapping[str, Any]) -> Body:
    body = Body()
    for key, value in raw.items():
        if key in _META_KEYS:
            continue
        name = _key(key)
        if isinstance(value, list) and value and all(_block_path(v) for v in value):
            for item in value:
                labels, inner = _block_path(item)  # type: ignore[misc]
                body.blocks.append(Block(name, labels, _body(inner)))
        else:
            body.attributes[name] = value
    return body


def _key(key: str) -> str:
    if key.startswith('"') and key.endswith('"') and len(key) >= 2:
        return _unescape(key[1:-1], key)
    return key


# ---- evaluation ----------------------------------------------------------------------------


def evaluate(raw: Any, variables: Mapping[str, str] | None = None, path: str = "") -> Any:
    """Evaluate one python-hcl2 value (see the module doc for what is supported)."""
    variables = variables or {}
    if raw is None or isinstance(raw, (bool, int)):
        return raw
    if isinstance(raw, float):
        return _number_text(repr(raw), path)
    if isinstance(raw, str):
        heredoc = _HEREDOC.match(raw)
        if heredoc:
            return _template(
                _heredoc_text(heredoc.group(3), heredoc.group(1) == "-"),
                variables,
                path,
                escapes=False,
            )
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            return _template(raw[1:-1], variables, path)
        return _expression(raw, variables, path)
    if isinstance(raw, list):
        return [evaluate(v, variables, f"{path}[{i}]") for i, v in enumerate(raw)]
    if isinstance(raw, dict):
        out: dict[str, Any] = {}
        for k, v in raw.items():
            if k in _META_KEYS:
                continue
            if k.startswith("${"):
                raise HclError(f"{path}: object keys must be names or strings, not {k}")
            name = _key(k)
            out[name] = evaluate(v, variables, f"{path}.{name}" if path else name)
        return out
    raise HclError(f"{path}: unsupported value {raw!r}")


def evaluate_body(
    body: Body, variables: Mapping[str, str] | None = None, path: str = ""
) -> dict[str, Any]:
    """The generic map Nomad stores for a body: attributes evaluated, blocks as lists
    of their bodies (nested by label)."""
    out: dict[str, Any] = {}
    for name, raw in body.attributes.items():
        out[name] = evaluate(raw, variables, f"{path}.{name}" if path else name)
    for blk in body.blocks:
        where = f"{path}.{blk.type}" if path else blk.type
        if blk.type in body.attributes:
            raise HclError(f"{where}: defined both as an attribute and as a block")
        item: Any = evaluate_body(blk.body, variables, where)
        for label in reversed(blk.labels):
            item = {label: item}
        out.setdefault(blk.type, []).append(item)
    return out


def _number_text(text: str, path: str) -> int | Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise HclError(f"{path}: {text!r} is not a number") from None
    if value == value.to_integral_value() and value.adjusted() < 100:
        return int(value)
    return value


def _expression(text: str, variables: Mapping[str, str], path: str) -> Any:
    expr = text[2:-1].strip() if text.startswith("${") and text.endswith("}") else text.strip()
    if expr in ("true", "false"):
        return expr == "true"
    if expr == "null":
        return None
    if _NUMBER.match(expr):
        return _number_text(expr, path)
    if expr.startswith('"') and expr.endswith('"') and len(expr) >= 2:
        return _template(expr[1:-1], variables, path)
    return _lookup(expr, variables, path)


def _lookup(expr: str, variables: Mapping[str, str], path: str) -> str:
    indexed = _INDEXED.match(expr)
    if indexed:  # env["X"] is env.X
        expr = f"{indexed.group(1)}.{indexed.group(2)}"
    elif not _NAME.match(expr):
        raise HclError(
            f"{path}: the expression {expr!r} is not supported here "
            "(only literals, strings and ${VARIABLE} references)"
        )
    if expr in variables:
        return variables[expr]
    raise HclError(f"{path}: unknown variable {expr!r}")


def _heredoc_text(text: str, indented: bool) -> str:
    """A heredoc's content keeps its final newline; `<<-` strips the common indent."""
    if not indented:
        return text
    lines = text.splitlines(keepends=True)
    indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return "".join(ln[cut:] if ln.strip() else ln.lstrip(" \t") for ln in lines)


def _template(text: str, variables: Mapping[str, str], path: str, escapes: bool = True) -> str:
    """A string's content: interpolate, then resolve backslash escapes (quoted strings
    only; a heredoc keeps its backslashes)."""
    unescape = _unescape if escapes else (lambda t, p: t)
    out: list[str] = []
    i = 0
    literal_start = 0
    while i < len(text):
        two, three = text[i : i + 2], text[i : i + 3]
        if three in ("$${", "%%{"):
            out.append(unescape(text[literal_start:i], path) + three[1:])
            i += 3
            literal_start = i
            continue
        if two == "%{":
            raise HclError(f"{path}: template directives (%{{ ... }}) are not supported here")
        if two == "${":
            end = text.find("}", i + 2)
            if end < 0:
                raise HclError(f"{path}: unterminated ${{ in a string")
            inner = text[i + 2 : end]
            if "{" in inner:
                raise HclError(f"{path}: the expression {inner.strip()!r} is not supported here")
            out.append(unescape(text[literal_start:i], path))
            value = _expression(inner, variables, path)
            out.append(_render(value))
            i = end + 1
            literal_start = i
            continue
        if escapes and text[i] == "\\":
            i += 2
            continue
        i += 1
    out.append(unescape(text[literal_start:], path))
    return "".join(out)


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _unescape(text: str, path: str) -> str:
    from hcl2.utils import process_escape_sequences

    return process_escape_sequences(text)
