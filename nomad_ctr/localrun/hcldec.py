"""hcldec-lite: decode a generic config body (hclfile.evaluate_body) with a plugin's
hclspec into a cty value, as the Nomad client does (fact sheet §8-§9), and encode it as
cty msgpack with the value's own type.

    decoded = decode_body({"image": "redis"}, task_config_spec())
    decoded.value    # {"image": "redis", "args": None, ...}
    decoded.msgpack  # bytes for TaskConfig.msgpack_driver_config

Follows the HCL JSON path Nomad takes: a block may be given as an object or a list of
objects, attribute values are converted to the declared type with cty's rules (numbers
and bools to strings and back, tuples to lists/sets, objects to maps), keys the schema
does not describe are rejected with the key named. One leniency Nomad's built-in
drivers document: an object given for a list(map(...)) option is a one-element list.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from nomad_ctr.driver import cty
from nomad_ctr.driver.cty import (
    BOOL,
    DYNAMIC,
    NUMBER,
    STRING,
    CtyType,
    ListType,
    MapType,
    ObjectType,
    SetType,
    TupleType,
)
from nomad_ctr.driver.hclspec import Spec, implied_type, parse_type_expr

__all__ = ["Decoded", "HclDecodeError", "convert", "decode_body", "evaluate_literal"]

_BLOCK_KINDS = ("block_value", "block_list", "block_set", "block_map", "block_attrs")


class HclDecodeError(ValueError):
    """The body does not fit the schema; `path` names the offending key."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Decoded:
    value: Any
    type: CtyType

    @property
    def msgpack(self) -> bytes:
        return cty.encode(self.value, self.type)


def decode_body(body: Mapping[str, Any] | None, spec: Spec, path: str = "config") -> Decoded:
    """Decode `body` (None = the block is absent) with `spec`."""
    body = dict(body or {})
    _check_names(body, spec, path)
    return _decode(spec, body, path, "")


# ---- names a body may use ------------------------------------------------------------


def _names(spec: Spec, hint: str, attrs: set[str], blocks: set[str]) -> None:
    kind = spec.WhichOneof("block")
    if kind == "object":
        for key, child in spec.object.attributes.items():
            _names(child, key, attrs, blocks)
    elif kind == "array":
        for child in spec.array.values:
            _names(child, hint, attrs, blocks)
    elif kind == "Attr":
        attrs.add(spec.Attr.name or hint)
    elif kind in _BLOCK_KINDS:
        blocks.add(getattr(spec, kind).name or hint)
    elif kind == "default":
        _names(spec.default.primary, hint, attrs, blocks)
        _names(spec.default.default, hint, attrs, blocks)


def _check_names(body: Mapping[str, Any], spec: Spec, path: str) -> None:
    attrs: set[str] = set()
    blocks: set[str] = set()
    _names(spec, "", attrs, blocks)
    for key in body:
        if key in attrs or key in blocks:
            continue
        near = difflib.get_close_matches(key, sorted(attrs | blocks), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise HclDecodeError(_join(path, key), f"unsupported argument {key!r}{hint}")


# ---- the spec walk ----------------------------------------------------------------------


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _decode(spec: Spec, body: Mapping[str, Any], path: str, hint: str) -> Decoded:
    kind = spec.WhichOneof("block")
    if kind == "object":
        values: dict[str, Any] = {}
        types: dict[str, CtyType] = {}
        for key, child in spec.object.attributes.items():
            d = _decode(child, body, path, key)
            values[key], types[key] = d.value, d.type
        return Decoded(values, ObjectType.of(types))
    if kind == "array":
        parts = [_decode(child, body, path, hint) for child in spec.array.values]
        return Decoded([d.value for d in parts], TupleType(tuple(d.type for d in parts)))
    if kind == "Attr":
        name = spec.Attr.name or hint
        ty = _type(spec.Attr.type, _join(path, name))
        if name not in body or body[name] is None:
            if spec.Attr.required:
                raise HclDecodeError(_join(path, name), f"the argument {name!r} is required")
            return Decoded(None, ty)
        return convert(body[name], ty, _join(path, name))
    if kind == "block_value":
        b = spec.block_value
        name = b.name or hint
        items = _blocks(body.get(name), _join(path, name))
        if len(items) > 1:
            raise HclDecodeError(_join(path, name), f"only one {name!r} block is allowed")
        if not items:
            if b.required:
                raise HclDecodeError(_join(path, name), f"a {name!r} block is required")
            return Decoded(None, implied_type(b.nested))
        return _nested(b.nested, items[0], _join(path, name))
    if kind in ("block_list", "block_set"):
        b = getattr(spec, kind)
        name = b.name or hint
        where = _join(path, name)
        items = _blocks(body.get(name), where)
        if b.min_items and len(items) < b.min_items:
            raise HclDecodeError(where, f"at least {b.min_items} {name!r} block(s) required")
        if b.max_items and len(items) > b.max_items:
            raise HclDecodeError(where, f"at most {b.max_items} {name!r} block(s) allowed")
        decoded = [_nested(b.nested, item, f"{where}[{i}]") for i, item in enumerate(items)]
        return _collection(
            decoded, implied_type(b.nested), SetType if kind == "block_set" else ListType
        )
    if kind == "block_attrs":
        b = spec.block_attrs
        name = b.name or hint
        where = _join(path, name)
        items = _blocks(body.get(name), where)
        if len(items) > 1:
            raise HclDecodeError(where, f"only one {name!r} block is allowed")
        elem = _type(b.type, where)
        if not items:
            if b.required:
                raise HclDecodeError(where, f"a {name!r} block is required")
            return Decoded(None, MapType(elem))
        return convert(items[0], MapType(elem), where)
    if kind == "block_map":
        b = spec.block_map
        name = b.name or hint
        where = _join(path, name)
        merged: dict[str, Any] = {}
        for item in _blocks(body.get(name), where):
            _merge_labels(merged, item, len(b.labels), where)
        return _label_level(merged, b.nested, len(b.labels), where)
    if kind == "default":
        primary = _decode(spec.default.primary, body, path, hint)
        if primary.value is not None:
            return primary
        return _decode(spec.default.default, body, path, hint)
    if kind == "literal":
        return evaluate_literal(spec.literal.value, path)
    raise HclDecodeError(path, "empty hclspec Spec in the plugin's schema")


def _type(text: str, path: str) -> CtyType:
    try:
        return parse_type_expr(text)
    except ValueError as exc:
        raise HclDecodeError(path, f"the plugin's schema has a bad type: {exc}") from None


def _blocks(raw: Any, path: str) -> list[Mapping[str, Any]]:
    """A block given as an object is one block; a list of objects is several."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            where = f"{path}[{i}]" if isinstance(raw, list) else path
            raise HclDecodeError(where, f"expected a block, got {_describe(item)}")
    return items


def _nested(spec: Spec, body: Mapping[str, Any], path: str) -> Decoded:
    _check_names(body, spec, path)
    return _decode(spec, body, path, "")


def _merge_labels(into: dict[str, Any], item: Any, depth: int, path: str) -> None:
    if depth == 0:
        raise HclDecodeError(path, "duplicate block")
    if not isinstance(item, Mapping):
        raise HclDecodeError(path, f"expected a labelled block, got {_describe(item)}")
    for label, inner in item.items():
        where = f"{path}[{label!r}]"
        if depth == 1:
            if label in into:
                raise HclDecodeError(where, "duplicate block")
            into[label] = inner
        else:
            _merge_labels(into.setdefault(label, {}), inner, depth - 1, where)


def _label_level(level: Mapping[str, Any], nested: Spec, depth: int, path: str) -> Decoded:
    values: dict[str, Any] = {}
    types: list[CtyType] = []
    for label in sorted(level):
        where = f"{path}[{label!r}]"
        if depth == 1:
            body = level[label]
            if isinstance(body, list) and len(body) == 1:
                body = body[0]
            if not isinstance(body, Mapping):
                raise HclDecodeError(where, f"expected a block, got {_describe(body)}")
            d = _nested(nested, body, where)
        else:
            d = _label_level(level[label], nested, depth - 1, where)
        values[label] = d.value
        types.append(d.type)
    if types:
        if any(t != types[0] for t in types):
            raise HclDecodeError(path, "blocks decode to different types")
        elem = types[0]
    else:
        elem = implied_type(nested)
        for _ in range(depth - 1):
            elem = MapType(elem)
    return Decoded(values, MapType(elem))


def _collection(items: list[Decoded], empty_elem: CtyType, kind: type) -> Decoded:
    if not items:
        return Decoded([], kind(empty_elem))
    first = items[0].type
    if all(d.type == first for d in items):
        return Decoded([d.value for d in items], kind(first))
    return Decoded([d.value for d in items], TupleType(tuple(d.type for d in items)))


# ---- literals ----------------------------------------------------------------------------


def evaluate_literal(text: str, path: str = "") -> Decoded:
    """A Literal spec's HCL expression (`true`, `"x"`, `[]`, `{ a = 1 }`) with its own
    (implied) type: `[]` is an empty tuple, as in Nomad."""
    from nomad_ctr.localrun.hclfile import HclError, evaluate, parse_text

    try:
        body = parse_text(f"v = {text}\n", "literal")
        value = evaluate(body.attributes.get("v"), {}, path)
    except HclError as exc:
        raise HclDecodeError(
            path, f"the plugin's schema has a bad literal {text!r}: {exc}"
        ) from None
    return Decoded(value, _implied(value))


def _implied(value: Any) -> CtyType:
    if value is None:
        return DYNAMIC
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, Decimal)):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        return TupleType(tuple(_implied(v) for v in value))
    if isinstance(value, Mapping):
        return ObjectType.of({k: _implied(v) for k, v in value.items()})
    raise TypeError(f"no cty type for {type(value).__name__}")


# ---- type conversion (cty's convert, the subset configs need) -------------------------------


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _number_string(value: int | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


def _parse_number(text: str, path: str) -> int | Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise HclDecodeError(path, f"a number is required, got the string {text!r}") from None
    if not value.is_finite():
        raise HclDecodeError(path, f"a number is required, got the string {text!r}")
    if value == value.to_integral_value() and value.adjusted() < 100:
        return int(value)
    return value


def convert(value: Any, ty: CtyType, path: str) -> Decoded:
    """Convert a generic value to `ty`; the result carries a concrete type (an `any`
    slot takes the type of its value)."""
    if value is None:
        return Decoded(None, ty)
    if ty == DYNAMIC:
        return Decoded(value, _implied(value))
    if ty == STRING:
        if isinstance(value, str):
            return Decoded(value, STRING)
        if isinstance(value, bool):
            return Decoded("true" if value else "false", STRING)
        if isinstance(value, (int, Decimal)):
            return Decoded(_number_string(value), STRING)
        raise HclDecodeError(path, f"a string is required, got {_describe(value)}")
    if ty == NUMBER:
        if isinstance(value, bool):
            raise HclDecodeError(path, "a number is required, got a bool")
        if isinstance(value, (int, Decimal)):
            return Decoded(value, NUMBER)
        if isinstance(value, float):
            return Decoded(Decimal(repr(value)), NUMBER)
        if isinstance(value, str):
            return Decoded(_parse_number(value, path), NUMBER)
        raise HclDecodeError(path, f"a number is required, got {_describe(value)}")
    if ty == BOOL:
        if isinstance(value, bool):
            return Decoded(value, BOOL)
        if isinstance(value, str) and value in ("true", "false", "1", "0"):
            return Decoded(value in ("true", "1"), BOOL)
        raise HclDecodeError(path, f"a bool is required, got {_describe(value)}")
    if isinstance(ty, (ListType, SetType)):
        if isinstance(value, Mapping) and isinstance(ty.elem, (MapType, ObjectType)):
            # `sysctl = { "a.b" = "1" }` for a list(map(string)) option: Nomad's built-in
            # drivers document this form next to the block form (a list of maps)
            value = [value]
        if not isinstance(value, list):
            kind = "list" if isinstance(ty, ListType) else "set"
            raise HclDecodeError(path, f"a {kind} is required, got {_describe(value)}")
        elems = [convert(v, ty.elem, f"{path}[{i}]") for i, v in enumerate(value)]
        elem = _unify(elems, ty.elem, path)
        seq = [d.value if d.type == elem else convert(d.value, elem, path).value for d in elems]
        return Decoded(seq, type(ty)(elem))
    if isinstance(ty, TupleType):
        if not isinstance(value, list):
            raise HclDecodeError(path, f"a tuple is required, got {_describe(value)}")
        if len(value) != len(ty.elems):
            raise HclDecodeError(
                path, f"a tuple of {len(ty.elems)} elements is required, got {len(value)}"
            )
        slots = [convert(v, t, f"{path}[{i}]") for i, (v, t) in enumerate(zip(value, ty.elems))]
        return Decoded([d.value for d in slots], TupleType(tuple(d.type for d in slots)))
    if isinstance(ty, MapType):
        if not isinstance(value, Mapping):
            raise HclDecodeError(path, f"a map is required, got {_describe(value)}")
        conv = {k: convert(v, ty.elem, f"{path}[{k!r}]") for k, v in value.items()}
        elem = _unify(list(conv.values()), ty.elem, path)
        entries = {
            k: d.value if d.type == elem else convert(d.value, elem, path).value
            for k, d in conv.items()
        }
        return Decoded(entries, MapType(elem))
    if isinstance(ty, ObjectType):
        if not isinstance(value, Mapping):
            raise HclDecodeError(path, f"an object is required, got {_describe(value)}")
        want = ty.attr_types()
        for key in value:
            if key not in want:
                raise HclDecodeError(_join(path, key), f"unsupported attribute {key!r}")
        attrs: dict[str, Any] = {}
        types: dict[str, CtyType] = {}
        for key, t in want.items():
            if key not in value:
                raise HclDecodeError(_join(path, key), f"the attribute {key!r} is required")
            d = convert(value[key], t, _join(path, key))
            attrs[key], types[key] = d.value, d.type
        return Decoded(attrs, ObjectType.of(types))
    raise HclDecodeError(path, f"unsupported type {ty!r}")


def _unify(items: list[Decoded], declared: CtyType, path: str) -> CtyType:
    """The element type of a collection: the declared one, or for `any` the one type all
    elements share (strings absorb numbers and bools, as cty's unification does)."""
    if declared != DYNAMIC or not items:
        return declared
    types = {d.type for d in items if d.value is not None}
    if not types:
        return DYNAMIC
    if len(types) == 1:
        return types.pop()
    if types <= {STRING, NUMBER, BOOL}:
        return STRING
    raise HclDecodeError(path, "all elements must have the same type")
