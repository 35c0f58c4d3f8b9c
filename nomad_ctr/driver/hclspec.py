"""Build hclspec `Spec` trees (the schema Nomad decodes `config {}` blocks with) and
derive the cty type of the value such a spec produces (fact sheet §8).

    spec = obj(
        image=attr("image", STRING, required=True),
        args=attr("args", ListType(STRING)),
        privileged=default(attr("privileged", BOOL), literal(False)),
    )
    implied_type(spec)  # -> object({args = list(string), image = string, privileged = bool})
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nomad_ctr._pb import hclspec_pb2
from nomad_ctr.driver.cty import (
    BOOL,
    DYNAMIC,
    NUMBER,
    STRING,
    CtyType,
    ListType,
    MapType,
    ObjectType,
    Primitive,
    SetType,
    TupleType,
)

__all__ = [
    "Spec",
    "array",
    "attr",
    "block",
    "block_attrs",
    "block_list",
    "block_map",
    "block_set",
    "default",
    "implied_type",
    "literal",
    "obj",
    "parse_type_expr",
    "type_expr",
]

Spec = hclspec_pb2.Spec


# ---- builders ---------------------------------------------------------------------------


def obj(attributes: Mapping[str, Spec] | None = None, **kw: Spec) -> Spec:
    """An object whose keys are the result attribute names."""
    spec = Spec()
    spec.object.SetInParent()
    for key, child in {**(attributes or {}), **kw}.items():
        spec.object.attributes[key].CopyFrom(child)
    return spec


def attr(name: str, ty: CtyType | str, required: bool = False) -> Spec:
    spec = Spec()
    spec.Attr.name = name
    spec.Attr.type = ty if isinstance(ty, str) else type_expr(ty)
    spec.Attr.required = required
    return spec


def block(name: str, nested: Spec, required: bool = False) -> Spec:
    spec = Spec()
    spec.block_value.name = name
    spec.block_value.required = required
    spec.block_value.nested.CopyFrom(nested)
    return spec


def block_list(name: str, nested: Spec, min_items: int = 0, max_items: int = 0) -> Spec:
    spec = Spec()
    spec.block_list.name = name
    spec.block_list.min_items = min_items
    spec.block_list.max_items = max_items
    spec.block_list.nested.CopyFrom(nested)
    return spec


def block_set(name: str, nested: Spec, min_items: int = 0, max_items: int = 0) -> Spec:
    spec = Spec()
    spec.block_set.name = name
    spec.block_set.min_items = min_items
    spec.block_set.max_items = max_items
    spec.block_set.nested.CopyFrom(nested)
    return spec


def block_attrs(name: str, elem: CtyType | str, required: bool = False) -> Spec:
    spec = Spec()
    spec.block_attrs.name = name
    spec.block_attrs.type = elem if isinstance(elem, str) else type_expr(elem)
    spec.block_attrs.required = required
    return spec


def block_map(name: str, labels: list[str], nested: Spec) -> Spec:
    if not labels:
        raise ValueError("block_map needs at least one label")
    spec = Spec()
    spec.block_map.name = name
    spec.block_map.labels.extend(labels)
    spec.block_map.nested.CopyFrom(nested)
    return spec


def default(primary: Spec, fallback: Spec) -> Spec:
    spec = Spec()
    spec.default.primary.CopyFrom(primary)
    spec.default.default.CopyFrom(fallback)
    return spec


def literal(value: Any) -> Spec:
    """A literal; Python values are rendered as HCL (a str is quoted, use
    `literal_expr` for raw expression text)."""
    return literal_expr(_hcl_literal(value))


def literal_expr(text: str) -> Spec:
    spec = Spec()
    spec.literal.value = text
    return spec


def array(*values: Spec) -> Spec:
    spec = Spec()
    spec.array.SetInParent()
    for v in values:
        spec.array.values.add().CopyFrom(v)
    return spec


def _hcl_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # HCL's string escapes match JSON's, except that ${ and %{ start templates
        return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_hcl_literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_hcl_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {type(value).__name__} as an HCL literal")


# ---- type expressions ---------------------------------------------------------------------


def type_expr(ty: CtyType) -> str:
    """The unquoted HCL type expression Nomad expects in Attr.type (`list(map(string))`)."""
    if isinstance(ty, Primitive):
        return "any" if ty == DYNAMIC else ty.name
    if isinstance(ty, ListType):
        return f"list({type_expr(ty.elem)})"
    if isinstance(ty, SetType):
        return f"set({type_expr(ty.elem)})"
    if isinstance(ty, MapType):
        return f"map({type_expr(ty.elem)})"
    if isinstance(ty, TupleType):
        return "tuple([" + ", ".join(type_expr(e) for e in ty.elems) + "])"
    if isinstance(ty, ObjectType):
        return "object({" + ", ".join(f"{k} = {type_expr(v)}" for k, v in ty.attrs) + "})"
    raise TypeError(f"not a cty type: {ty!r}")


_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*|[()\[\]{},=])")


class _TypeParser:
    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise ValueError(f"bad type expression {text!r}")
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0
        self.text = text

    def take(self, want: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise ValueError(f"bad type expression {self.text!r}: unexpected end")
        tok = self.tokens[self.i]
        if want is not None and tok != want:
            raise ValueError(f"bad type expression {self.text!r}: expected {want!r}, got {tok!r}")
        self.i += 1
        return tok

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> CtyType:
        ty = self.type()
        if self.peek() is not None:
            raise ValueError(f"bad type expression {self.text!r}: trailing {self.peek()!r}")
        return ty

    def type(self) -> CtyType:
        word = self.take()
        simple = {"string": STRING, "number": NUMBER, "bool": BOOL, "any": DYNAMIC}
        if word in simple:
            return simple[word]
        if word in ("list", "set", "map"):
            self.take("(")
            elem = self.type()
            self.take(")")
            return {"list": ListType, "set": SetType, "map": MapType}[word](elem)
        if word == "tuple":
            self.take("(")
            self.take("[")
            elems: list[CtyType] = []
            while self.peek() != "]":
                elems.append(self.type())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            self.take(")")
            return TupleType(tuple(elems))
        if word == "object":
            self.take("(")
            self.take("{")
            attrs: dict[str, CtyType] = {}
            while self.peek() != "}":
                name = self.take()
                self.take("=")
                attrs[name] = self.type()
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
            self.take(")")
            return ObjectType.of(attrs)
        raise ValueError(f"bad type expression {self.text!r}: unknown type {word!r}")


def parse_type_expr(text: str) -> CtyType:
    """`list(map(string))` -> ListType(MapType(STRING)); quoted strings are an error, as
    in Nomad."""
    return _TypeParser(text).parse()


# ---- implied type -------------------------------------------------------------------------


def implied_type(spec: Spec) -> CtyType:
    """The cty type of the value Nomad produces for `spec` (what cty.decode expects)."""
    kind = spec.WhichOneof("block")
    if kind == "object":
        return ObjectType.of({k: implied_type(v) for k, v in spec.object.attributes.items()})
    if kind == "array":
        return TupleType(tuple(implied_type(v) for v in spec.array.values))
    if kind == "Attr":
        return parse_type_expr(spec.Attr.type)
    if kind == "block_value":
        return implied_type(spec.block_value.nested)
    if kind == "block_attrs":
        return MapType(parse_type_expr(spec.block_attrs.type))
    if kind == "block_list":
        return ListType(implied_type(spec.block_list.nested))
    if kind == "block_set":
        return SetType(implied_type(spec.block_set.nested))
    if kind == "block_map":
        ty = implied_type(spec.block_map.nested)
        for _ in spec.block_map.labels:
            ty = MapType(ty)
        return ty
    if kind == "default":
        return implied_type(spec.default.primary)
    if kind == "literal":
        # Nomad evaluates the expression; we only need a type for decoding, and a
        # literal's value carries its own shape
        return DYNAMIC
    raise ValueError("empty hclspec Spec")
