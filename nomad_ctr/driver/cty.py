"""cty values in msgpack: the encoding Nomad uses for driver and task configuration.

Nomad decodes a `config {}` block with the plugin's hclspec and sends the resulting cty
value as msgpack (protocol fact sheet §9-§10). This module decodes such bytes against an
expected cty type (derived from the hclspec, see hclspec.implied_type) into plain Python
values, and encodes Python values back (for tests and the harness).

Python values: null -> None, unknown -> UNKNOWN, bool -> bool, string -> str, number ->
int | float | Decimal, list/set/tuple -> list, map/object -> dict.

Every decoding error is a CtyError naming the path of the bad value (`mounts[1].source`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import msgpack

__all__ = [
    "BOOL",
    "DYNAMIC",
    "NUMBER",
    "STRING",
    "UNKNOWN",
    "CtyError",
    "CtyType",
    "Dynamic",
    "ListType",
    "MapType",
    "ObjectType",
    "Primitive",
    "SetType",
    "TupleType",
    "Unknown",
    "decode",
    "decode_generic",
    "encode",
    "implied_type_of",
    "type_from_json",
    "type_to_json",
]

MAX_DEPTH = 64
MAX_ITEMS = 100_000
_MAX_NUMBER_TEXT = 400  # decimal strings longer than this are not numbers we accept
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


# ---- types -------------------------------------------------------------------------


class CtyType:
    """Base of the cty type model; instances are immutable and comparable."""


@dataclass(frozen=True)
class Primitive(CtyType):
    name: str  # "string" | "number" | "bool" | "dynamic"

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ListType(CtyType):
    elem: CtyType


@dataclass(frozen=True)
class SetType(CtyType):
    elem: CtyType


@dataclass(frozen=True)
class MapType(CtyType):
    elem: CtyType


@dataclass(frozen=True)
class ObjectType(CtyType):
    attrs: tuple[tuple[str, CtyType], ...]  # sorted by name

    @staticmethod
    def of(attrs: Mapping[str, CtyType]) -> ObjectType:
        return ObjectType(tuple(sorted(attrs.items())))

    def attr_types(self) -> dict[str, CtyType]:
        return dict(self.attrs)


@dataclass(frozen=True)
class TupleType(CtyType):
    elems: tuple[CtyType, ...]


STRING = Primitive("string")
NUMBER = Primitive("number")
BOOL = Primitive("bool")
DYNAMIC = Primitive("dynamic")
_PRIMITIVES = {p.name: p for p in (STRING, NUMBER, BOOL, DYNAMIC)}


class Unknown:
    """A value Nomad did not know yet (any msgpack ext). Nomad never sends these in
    practice; the config layer rejects them."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()


@dataclass(frozen=True)
class Dynamic:
    """A value to encode under a `dynamic` type slot with an explicit real type."""

    type: CtyType
    value: Any


class CtyError(ValueError):
    """Bytes that are not a valid cty msgpack value of the expected type."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


# ---- type JSON (used inside dynamic values) ------------------------------------------


def type_to_json(ty: CtyType) -> Any:
    if isinstance(ty, Primitive):
        return ty.name
    if isinstance(ty, ListType):
        return ["list", type_to_json(ty.elem)]
    if isinstance(ty, SetType):
        return ["set", type_to_json(ty.elem)]
    if isinstance(ty, MapType):
        return ["map", type_to_json(ty.elem)]
    if isinstance(ty, ObjectType):
        return ["object", {k: type_to_json(v) for k, v in ty.attrs}]
    if isinstance(ty, TupleType):
        return ["tuple", [type_to_json(e) for e in ty.elems]]
    raise TypeError(f"not a cty type: {ty!r}")


def type_from_json(doc: Any, _depth: int = 0) -> CtyType:
    if _depth > MAX_DEPTH:
        raise ValueError("type nested too deeply")
    if isinstance(doc, str):
        if doc in _PRIMITIVES:
            return _PRIMITIVES[doc]
        raise ValueError(f"unknown type {doc!r}")
    if isinstance(doc, list) and len(doc) in (2, 3) and isinstance(doc[0], str):
        kind, arg = doc[0], doc[1]
        if kind in ("list", "set", "map") and len(doc) == 2:
            elem = type_from_json(arg, _depth + 1)
            return {"list": ListType, "set": SetType, "map": MapType}[kind](elem)
        if kind == "object" and isinstance(arg, dict):
            # an optional 3rd element lists optional attributes; irrelevant for decoding
            return ObjectType.of({str(k): type_from_json(v, _depth + 1) for k, v in arg.items()})
        if kind == "tuple" and isinstance(arg, list) and len(doc) == 2:
            return TupleType(tuple(type_from_json(e, _depth + 1) for e in arg))
    raise ValueError(f"not a cty type: {json.dumps(doc)[:80]}")


def _type_json_bytes(ty: CtyType) -> bytes:
    return json.dumps(type_to_json(ty), separators=(",", ":"), sort_keys=True).encode()


# ---- decoding --------------------------------------------------------------------------


class _Map(list):
    """A msgpack map kept as its (key, value) pairs, so duplicates can be detected."""


def _unpack(data: bytes, max_items: int) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CtyError("", "expected bytes")
    try:
        return msgpack.unpackb(
            bytes(data),
            raw=True,  # strings stay bytes: we decode UTF-8 ourselves, with a path
            use_list=True,
            strict_map_key=False,
            object_pairs_hook=_Map,
            max_array_len=max_items,
            max_map_len=max_items,
        )
    except msgpack.ExtraData:
        raise CtyError("", "trailing bytes after the value") from None
    except (ValueError, msgpack.UnpackException) as exc:
        # StackError (too nested), OutOfData, FormatError, size limits
        raise CtyError("", f"not valid msgpack ({type(exc).__name__}: {exc})"[:200]) from None


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, (bytes, bytearray)):
        return "string"
    if isinstance(v, _Map):
        return "map"
    if isinstance(v, list):
        return "list"
    return "unknown value"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _text(raw: Any, path: str) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise CtyError(path, "string is not valid UTF-8") from None


def _number(raw: Any, path: str) -> int | float | Decimal:
    if isinstance(raw, bool):
        raise CtyError(path, "expected number, got bool")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if math.isnan(raw):
            raise CtyError(path, "NaN is not a number")
        return raw
    if isinstance(raw, (bytes, bytearray)):
        return _parse_decimal(_text(raw, path), path)
    raise CtyError(path, f"expected number, got {_kind(raw)}")


def _parse_decimal(text: str, path: str) -> int | Decimal:
    if len(text) > _MAX_NUMBER_TEXT:
        raise CtyError(path, "number text too long")
    if not _DECIMAL_RE.match(text):
        raise CtyError(path, f"{json.dumps(text)[:82]} is not a number")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid text
        raise CtyError(path, f"{json.dumps(text)[:82]} is not a number") from None
    # small integral values become int; huge exponents stay Decimal (no 10**1e9 ints)
    if value == value.to_integral_value() and value.adjusted() < 100:
        return int(value)
    return value


def _pairs(raw: Any, path: str) -> list[tuple[str, Any]]:
    if not isinstance(raw, _Map):
        raise CtyError(path, f"expected map, got {_kind(raw)}")
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for k, v in raw:
        if not isinstance(k, (bytes, bytearray)):
            raise CtyError(path, f"map key must be a string, got {_kind(k)}")
        key = _text(k, path)
        if key in seen:
            raise CtyError(path, f"duplicate key {json.dumps(key)[:82]}")
        seen.add(key)
        out.append((key, v))
    return out


class _Decoder:
    def __init__(self, max_items: int, wrapped_dynamic: bool) -> None:
        self.max_items = max_items
        self.wrapped_dynamic = wrapped_dynamic

    def value(self, raw: Any, ty: CtyType, path: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CtyError(path, f"value nested deeper than {MAX_DEPTH} levels")
        if raw is None:
            return None
        if isinstance(raw, (msgpack.ExtType, msgpack.Timestamp)):
            return UNKNOWN
        if ty == DYNAMIC:
            return self.dynamic(raw, path, depth)
        if ty == STRING:
            if isinstance(raw, (bytes, bytearray)):
                return _text(raw, path)
            raise CtyError(path, f"expected string, got {_kind(raw)}")
        if ty == NUMBER:
            return _number(raw, path)
        if ty == BOOL:
            if isinstance(raw, bool):
                return raw
            raise CtyError(path, f"expected bool, got {_kind(raw)}")
        if isinstance(ty, (ListType, SetType)):
            items = self.array(raw, path)
            return [self.value(v, ty.elem, f"{path}[{i}]", depth + 1) for i, v in enumerate(items)]
        if isinstance(ty, TupleType):
            items = self.array(raw, path)
            if len(items) != len(ty.elems):
                raise CtyError(path, f"expected {len(ty.elems)} elements, got {len(items)}")
            return [
                self.value(v, t, f"{path}[{i}]", depth + 1)
                for i, (v, t) in enumerate(zip(items, ty.elems))
            ]
        if isinstance(ty, MapType):
            return {
                k: self.value(v, ty.elem, f"{path}[{json.dumps(k)}]", depth + 1)
                for k, v in _pairs(raw, path)
            }
        if isinstance(ty, ObjectType):
            want = ty.attr_types()
            got: dict[str, Any] = {}
            for k, v in _pairs(raw, path):
                if k not in want:
                    raise CtyError(_join(path, k), "unsupported attribute")
                got[k] = self.value(v, want[k], _join(path, k), depth + 1)
            # absent attributes are null (cty would refuse; Go drivers use zero values)
            return {k: got.get(k) for k in want}
        raise CtyError(path, f"unsupported type {ty!r}")

    def array(self, raw: Any, path: str) -> list[Any]:
        if isinstance(raw, _Map) or not isinstance(raw, list):
            raise CtyError(path, f"expected list, got {_kind(raw)}")
        if len(raw) > self.max_items:
            raise CtyError(path, f"more than {self.max_items} elements")
        return raw

    def dynamic(self, raw: Any, path: str, depth: int) -> Any:
        if not self.wrapped_dynamic:
            return self.generic(raw, path, depth)
        if (
            isinstance(raw, list)
            and not isinstance(raw, _Map)
            and len(raw) == 2
            and isinstance(raw[0], (bytes, bytearray))
        ):
            try:
                real = type_from_json(json.loads(_text(raw[0], path)))
            except ValueError as exc:
                raise CtyError(path, f"bad dynamic type: {exc}") from None
            return self.value(raw[1], real, path, depth + 1)
        raise CtyError(path, "expected a dynamic value [type, value]")

    def generic(self, raw: Any, path: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CtyError(path, f"value nested deeper than {MAX_DEPTH} levels")
        if raw is None or isinstance(raw, bool):
            return raw
        if isinstance(raw, (int, float)):
            return _number(raw, path)
        if isinstance(raw, (bytes, bytearray)):
            return _text(raw, path)
        if isinstance(raw, (msgpack.ExtType, msgpack.Timestamp)):
            return UNKNOWN
        if isinstance(raw, _Map):
            return {k: self.generic(v, _join(path, k), depth + 1) for k, v in _pairs(raw, path)}
        if isinstance(raw, list):
            return [self.generic(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(self.array(raw, path))]
        raise CtyError(path, f"unsupported msgpack value {type(raw).__name__}")


def decode(
    data: bytes, ty: CtyType, *, max_items: int = MAX_ITEMS, wrapped_dynamic: bool = True
) -> Any:
    """Decode cty msgpack `data` holding a value of type `ty`.

    `wrapped_dynamic=False` decodes `dynamic` slots generically: Nomad encodes a config
    value with its own concrete type, so `any` attributes arrive without the wrapper.
    """
    raw = _unpack(data, max_items)
    return _Decoder(max_items, wrapped_dynamic).value(raw, ty, "", 0)


def decode_generic(data: bytes, *, max_items: int = MAX_ITEMS) -> Any:
    """Decode without a type: maps -> dict, arrays -> list, strings as UTF-8 text."""
    raw = _unpack(data, max_items)
    return _Decoder(max_items, False).generic(raw, "", 0)


# ---- encoding -------------------------------------------------------------------------


def implied_type_of(value: Any) -> CtyType:
    """The cty type HCL would give a Python literal (lists become tuples, dicts objects)."""
    if isinstance(value, Dynamic):
        return value.type
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float, Decimal)):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, Mapping):
        return ObjectType.of({str(k): implied_type_of(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return TupleType(tuple(implied_type_of(v) for v in value))
    if value is None or value is UNKNOWN:
        return DYNAMIC
    raise TypeError(f"no cty type for {type(value).__name__}")


class _Encoder:
    def __init__(self) -> None:
        self.packer = msgpack.Packer(use_bin_type=True, use_single_float=False)
        self.out: list[bytes] = []

    def put(self, obj: Any) -> None:
        self.out.append(self.packer.pack(obj))

    def head(self, kind: str, n: int) -> None:
        self.out.append(
            self.packer.pack_array_header(n) if kind == "array" else self.packer.pack_map_header(n)
        )

    def value(self, v: Any, ty: CtyType, path: str) -> None:
        if v is None:
            self.put(None)
            return
        if v is UNKNOWN:
            self.out.append(b"\xd4\x00\x00")
            return
        if ty == DYNAMIC:
            real = implied_type_of(v)
            inner = v.value if isinstance(v, Dynamic) else v
            self.head("array", 2)
            self.put(_type_json_bytes(real))
            self.value(inner, real, path)
            return
        if isinstance(v, Dynamic):
            v = v.value
        if ty == STRING:
            if not isinstance(v, str):
                raise CtyError(path, f"expected str, got {type(v).__name__}")
            self.put(v)
        elif ty == NUMBER:
            self.number(v, path)
        elif ty == BOOL:
            if not isinstance(v, bool):
                raise CtyError(path, f"expected bool, got {type(v).__name__}")
            self.put(v)
        elif isinstance(ty, (ListType, SetType, TupleType)):
            if not isinstance(v, (list, tuple, set, frozenset)):
                raise CtyError(path, f"expected a sequence, got {type(v).__name__}")
            items = list(v)
            types: Iterable[CtyType]
            if isinstance(ty, TupleType):
                if len(items) != len(ty.elems):
                    raise CtyError(path, f"expected {len(ty.elems)} elements, got {len(items)}")
                types = ty.elems
            else:
                types = [ty.elem] * len(items)
            self.head("array", len(items))
            for i, (item, t) in enumerate(zip(items, types)):
                self.value(item, t, f"{path}[{i}]")
        elif isinstance(ty, MapType):
            if not isinstance(v, Mapping):
                raise CtyError(path, f"expected a mapping, got {type(v).__name__}")
            self.head("map", len(v))
            for k in sorted(v):
                self.put(str(k))
                self.value(v[k], ty.elem, f"{path}[{json.dumps(k)}]")
        elif isinstance(ty, ObjectType):
            if not isinstance(v, Mapping):
                raise CtyError(path, f"expected a mapping, got {type(v).__name__}")
            extra = set(v) - {k for k, _ in ty.attrs}
            if extra:
                raise CtyError(_join(path, sorted(extra)[0]), "unsupported attribute")
            self.head("map", len(ty.attrs))
            for k, t in ty.attrs:  # all attributes, sorted; absent ones are null
                self.put(k)
                self.value(v.get(k), t, _join(path, k))
        else:
            raise CtyError(path, f"unsupported type {ty!r}")

    def number(self, v: Any, path: str) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float, Decimal)):
            raise CtyError(path, f"expected number, got {type(v).__name__}")
        if isinstance(v, float):
            if math.isnan(v):
                raise CtyError(path, "NaN is not a cty number")
            if math.isinf(v) or not v.is_integer():
                self.put(v)  # every Python float is exact in float64
                return
            v = int(v)
        if isinstance(v, Decimal):
            if v.is_nan():
                raise CtyError(path, "NaN is not a cty number")
            if v.is_infinite():
                self.put(float(v))
                return
            if v == v.to_integral_value() and v.adjusted() < 25:
                v = int(v)
            elif Decimal(float(v)) == v:
                self.put(float(v))
                return
            else:
                self.put(str(v))
                return
        if _INT64_MIN <= v <= _INT64_MAX:
            self.put(v)
        else:
            self.put(str(v))  # too large for int64: decimal text, as cty does


def encode(value: Any, ty: CtyType | None = None) -> bytes:
    """Encode `value` as cty msgpack with type `ty` (default: its implied type)."""
    enc = _Encoder()
    enc.value(value, implied_type_of(value) if ty is None else ty, "")
    return b"".join(enc.out)
