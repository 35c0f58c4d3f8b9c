"""hclspec builder: proto shapes Nomad expects, type expressions, implied types."""

from __future__ import annotations

import pytest

from nomad_ctr._pb import hclspec_pb2
from nomad_ctr.driver import hclspec
from nomad_ctr.driver.cty import (
    BOOL,
    DYNAMIC,
    NUMBER,
    STRING,
    ListType,
    MapType,
    ObjectType,
    SetType,
    TupleType,
)
from nomad_ctr.driver.hclspec import (
    array,
    attr,
    block,
    block_attrs,
    block_list,
    block_map,
    block_set,
    default,
    implied_type,
    literal,
    literal_expr,
    obj,
    parse_type_expr,
    type_expr,
)

pytestmark = pytest.mark.unit


def test_attr_proto_fields() -> None:
    spec = attr("image", STRING, required=True)
    assert spec.WhichOneof("block") == "Attr"
    assert (spec.Attr.name, spec.Attr.type, spec.Attr.required) == ("image", "string", True)


def test_wire_field_numbers() -> None:
    # Spec.Attr is field 3 and Attr.type field 2: 0x1a = (3<<3)|2, 0x12 = (2<<3)|2
    wire = attr("x", "bool").SerializeToString()
    assert wire == bytes([0x1A, 0x09, 0x0A, 0x01]) + b"x" + bytes([0x12, 0x04]) + b"bool"
    assert hclspec_pb2.Spec.DESCRIPTOR.fields_by_name["default"].number == 9
    assert hclspec_pb2.Spec.DESCRIPTOR.fields_by_name["literal"].number == 10


@pytest.mark.parametrize(
    "value, text",
    [
        (True, "true"),
        (False, "false"),
        (5, "5"),
        ("volume", '"volume"'),
        ("a${b}", '"a$${b}"'),  # no template interpolation in defaults
        ([], "[]"),
        (["a", "b"], '["a", "b"]'),
        ({"enabled": False}, "{enabled = false}"),
    ],
)
def test_literal_rendering(value: object, text: str) -> None:
    assert literal(value).literal.value == text


def test_default_and_object() -> None:
    spec = obj(flag=default(attr("flag", BOOL), literal(True)))
    inner = spec.object.attributes["flag"]
    assert inner.default.primary.Attr.name == "flag"
    assert inner.default.default.literal.value == "true"
    assert implied_type(spec) == ObjectType.of({"flag": BOOL})


@pytest.mark.parametrize(
    "ty, text",
    [
        (STRING, "string"),
        (DYNAMIC, "any"),
        (ListType(MapType(STRING)), "list(map(string))"),
        (SetType(NUMBER), "set(number)"),
        (TupleType((STRING, BOOL)), "tuple([string, bool])"),
        (ObjectType.of({"b": NUMBER, "a": STRING}), "object({a = string, b = number})"),
    ],
)
def test_type_expr_round_trip(ty: object, text: str) -> None:
    assert type_expr(ty) == text  # type: ignore[arg-type]
    assert parse_type_expr(text) == ty


@pytest.mark.parametrize("text", ['"string"', "list(", "list(string", "strin", "map(string) x", ""])
def test_bad_type_expressions(text: str) -> None:
    with pytest.raises(ValueError):
        parse_type_expr(text)


def test_implied_types_of_every_spec_kind() -> None:
    nested = obj(target=attr("target", STRING, required=True))
    spec = obj(
        one=block("one", nested),
        many=block_list("many", nested, max_items=3),
        uniq=block_set("uniq", nested),
        labels=block_attrs("labels", STRING),
        byname=block_map("byname", ["kind", "name"], nested),
        pair=array(attr("a", STRING), attr("b", NUMBER)),
        lit=literal_expr("[1, 2]"),
    )
    inner = ObjectType.of({"target": STRING})
    assert implied_type(spec) == ObjectType.of(
        {
            "one": inner,
            "many": ListType(inner),
            "uniq": SetType(inner),
            "labels": MapType(STRING),
            "byname": MapType(MapType(inner)),
            "pair": TupleType((STRING, NUMBER)),
            "lit": DYNAMIC,
        }
    )


def test_empty_spec_has_no_type() -> None:
    with pytest.raises(ValueError):
        implied_type(hclspec_pb2.Spec())


def test_block_map_needs_labels() -> None:
    with pytest.raises(ValueError):
        hclspec.block_map("x", [], obj())
