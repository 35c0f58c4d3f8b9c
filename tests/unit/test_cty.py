"""cty msgpack codec: the fact sheet's worked examples, number rules, hostile input."""

from __future__ import annotations

from decimal import Decimal

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nomad_ctr.driver import cty
from nomad_ctr.driver.cty import (
    BOOL,
    DYNAMIC,
    NUMBER,
    STRING,
    UNKNOWN,
    CtyError,
    Dynamic,
    ListType,
    MapType,
    ObjectType,
    SetType,
    TupleType,
)

pytestmark = pytest.mark.unit

IMAGE_ARGS = ObjectType.of({"image": STRING, "args": ListType(STRING)})


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# ---- worked examples (fact sheet §10) -------------------------------------------------


def test_object_with_null_attribute_sorted_keys() -> None:
    want = h("82 a4 61 72 67 73 c0 a5 69 6d 61 67 65 a5 72 65 64 69 73")
    assert cty.encode({"image": "redis"}, IMAGE_ARGS) == want
    assert cty.decode(want, IMAGE_ARGS) == {"args": None, "image": "redis"}


def test_list_of_one_string() -> None:
    assert cty.encode(["a"], ListType(STRING)) == h("91 a1 61")
    assert cty.decode(h("91 a1 61"), ListType(STRING)) == ["a"]


def test_dynamic_wrapped_string() -> None:
    want = h("92 c4 08 22 73 74 72 69 6e 67 22 a1 78")
    assert cty.encode("x", DYNAMIC) == want
    assert cty.decode(want, DYNAMIC) == "x"


def test_dynamic_type_json_may_be_str() -> None:
    data = msgpack.packb(['["list","number"]', [1, 2]], use_bin_type=True)
    assert cty.decode(data, DYNAMIC) == [1, 2]


def test_dynamic_null_is_plain_nil() -> None:
    assert cty.encode(None, DYNAMIC) == b"\xc0"
    assert cty.decode(b"\xc0", DYNAMIC) is None


def test_dynamic_unwrapped_when_asked() -> None:
    # Nomad encodes `any` attributes with their concrete type, without the wrapper
    data = msgpack.packb({"a": [1, "x"]})
    assert cty.decode(data, DYNAMIC, wrapped_dynamic=False) == {"a": [1, "x"]}
    with pytest.raises(CtyError, match=r"dynamic value"):
        cty.decode(data, DYNAMIC)


def test_unknown_values() -> None:
    assert cty.encode(UNKNOWN, STRING) == h("d4 00 00")
    assert cty.decode(h("d4 00 00"), STRING) is UNKNOWN
    refined = msgpack.packb(msgpack.ExtType(0x0C, msgpack.packb({1: False})))
    assert cty.decode(refined, NUMBER) is UNKNOWN
    assert cty.decode_generic(refined) is UNKNOWN


# ---- numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, encoded",
    [
        (0, "00"),
        (127, "7f"),
        (-1, "ff"),
        (255, "cc ff"),
        (2**63 - 1, "cf 7f ff ff ff ff ff ff ff"),
        (-(2**63), "d3 80 00 00 00 00 00 00 00"),
        (1.5, "cb 3f f8 00 00 00 00 00 00"),
        (3.0, "03"),  # integral floats are ints in cty
    ],
)
def test_number_encoding(value: object, encoded: str) -> None:
    assert cty.encode(value, NUMBER) == h(encoded)


def test_big_and_inexact_numbers_are_decimal_strings() -> None:
    assert cty.encode(2**64, NUMBER) == msgpack.packb("18446744073709551616")
    assert cty.encode(Decimal("0.1"), NUMBER) == msgpack.packb("0.1")
    assert cty.encode(Decimal("0.5"), NUMBER) == msgpack.packb(0.5)
    assert cty.decode(msgpack.packb("18446744073709551616"), NUMBER) == 2**64
    assert cty.decode(msgpack.packb("0.1"), NUMBER) == Decimal("0.1")
    big = cty.decode(msgpack.packb("1e400"), NUMBER)
    assert isinstance(big, Decimal) and big == Decimal("1e400")


def test_infinity_round_trips() -> None:
    inf = float("inf")
    assert cty.decode(cty.encode(inf, NUMBER), NUMBER) == inf
    assert cty.decode(cty.encode(-inf, NUMBER), NUMBER) == -inf


def test_numbers_from_any_msgpack_number_form() -> None:
    assert cty.decode(h("ca 3f c0 00 00"), NUMBER) == 1.5  # float32
    assert cty.decode(h("cf ff ff ff ff ff ff ff ff"), NUMBER) == 2**64 - 1  # uint64 max


@pytest.mark.parametrize("text", ["abc", "1_000", " 1", "NaN", "Infinity", "0x10", "", "1e"])
def test_bad_number_strings(text: str) -> None:
    with pytest.raises(CtyError, match="not a number"):
        cty.decode(msgpack.packb(text), NUMBER)


def test_nan_rejected_both_ways() -> None:
    with pytest.raises(CtyError, match="NaN"):
        cty.decode(msgpack.packb(float("nan")), NUMBER)
    with pytest.raises(CtyError, match="NaN"):
        cty.encode(float("nan"), NUMBER)


def test_number_text_length_capped() -> None:
    with pytest.raises(CtyError, match="too long"):
        cty.decode(msgpack.packb("1" * 1000), NUMBER)


# ---- collections ----------------------------------------------------------------------


def test_map_keys_sorted_and_decoded() -> None:
    ty = MapType(STRING)
    data = cty.encode({"b": "2", "a": "1"}, ty)
    assert data == h("82 a1 61 a1 31 a1 62 a1 32")
    assert cty.decode(data, ty) == {"a": "1", "b": "2"}


def test_empty_collections() -> None:
    assert cty.decode(b"\x90", ListType(STRING)) == []
    assert cty.decode(b"\x80", MapType(NUMBER)) == {}
    assert cty.decode(b"\x90", SetType(BOOL)) == []


def test_tuple_length_checked() -> None:
    ty = TupleType((STRING, NUMBER))
    assert cty.decode(cty.encode(["a", 1], ty), ty) == ["a", 1]
    with pytest.raises(CtyError, match="expected 2 elements, got 1"):
        cty.decode(msgpack.packb(["a"]), ty)


def test_object_rejects_unexpected_attribute_with_path() -> None:
    data = msgpack.packb({"image": "x", "args": None, "evil": 1})
    with pytest.raises(CtyError) as err:
        cty.decode(data, IMAGE_ARGS)
    assert err.value.path == "evil" and "unsupported attribute" in str(err.value)


def test_object_missing_attributes_are_null() -> None:
    assert cty.decode(msgpack.packb({"image": "x"}), IMAGE_ARGS) == {"args": None, "image": "x"}


def test_nested_error_path() -> None:
    ty = ObjectType.of({"mounts": ListType(ObjectType.of({"source": STRING}))})
    data = msgpack.packb({"mounts": [{"source": "a"}, {"source": 5}]})
    with pytest.raises(CtyError) as err:
        cty.decode(data, ty)
    assert str(err.value) == "mounts[1].source: expected string, got number"


def test_generic_decoding() -> None:
    data = msgpack.packb({"a": [1, "x", None, True, {"b": 1.5}]}, use_bin_type=True)
    assert cty.decode_generic(data) == {"a": [1, "x", None, True, {"b": 1.5}]}


# ---- hostile input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "ty, value, message",
    [
        (STRING, True, "expected string, got bool"),
        (STRING, 5, "expected string, got number"),
        (BOOL, "yes", "expected bool, got string"),
        (NUMBER, True, "expected number, got bool"),
        (ListType(STRING), "echo hi", "expected list, got string"),
        (ListType(MapType(STRING)), {"a": "b"}, "expected list, got map"),
        (MapType(STRING), ["a"], "expected map, got list"),
    ],
)
def test_wrong_types(ty: cty.CtyType, value: object, message: str) -> None:
    with pytest.raises(CtyError, match=message):
        cty.decode(msgpack.packb(value), ty)


def test_invalid_utf8_rejected() -> None:
    with pytest.raises(CtyError, match="not valid UTF-8"):
        cty.decode(b"\xa2\xff\xfe", STRING)
    with pytest.raises(CtyError, match="not valid UTF-8"):
        cty.decode(msgpack.packb({b"\xff": "x"}, use_bin_type=False), MapType(STRING))


def test_bin_accepted_as_string_when_utf8() -> None:
    # Go's msgpack decoder reads bin where a string is expected; so do we
    assert cty.decode(msgpack.packb(b"abc", use_bin_type=True), STRING) == "abc"
    with pytest.raises(CtyError, match="UTF-8"):
        cty.decode(msgpack.packb(b"\xff", use_bin_type=True), STRING)


def test_duplicate_map_keys_rejected() -> None:
    data = h("82 a1 61 a1 31 a1 61 a1 32")  # {"a": "1", "a": "2"}
    with pytest.raises(CtyError, match="duplicate key"):
        cty.decode(data, MapType(STRING))


def test_non_string_map_key_rejected() -> None:
    with pytest.raises(CtyError, match="map key must be a string"):
        cty.decode(msgpack.packb({1: "x"}), MapType(STRING))


def test_deep_nesting_rejected() -> None:
    data = b"\x91" * 1000 + b"\xc0"
    ty: cty.CtyType = STRING
    for _ in range(1000):
        ty = ListType(ty)
    with pytest.raises(CtyError, match="nested|msgpack"):
        cty.decode(data, ty)
    with pytest.raises(CtyError, match="nested|msgpack"):
        cty.decode_generic(data)


def test_huge_list_rejected() -> None:
    data = b"\xdd" + (1_000_000).to_bytes(4, "big") + b"\xc0" * 1_000_000
    with pytest.raises(CtyError):
        cty.decode(data, ListType(STRING))


def test_truncated_and_trailing_bytes() -> None:
    with pytest.raises(CtyError, match="not valid msgpack"):
        cty.decode(b"\x92\xa1", ListType(STRING))
    with pytest.raises(CtyError, match="trailing"):
        cty.decode(b"\xc0\xc0", STRING)


def test_bad_dynamic_type_json() -> None:
    data = msgpack.packb([b'["nope"]', 1], use_bin_type=True)
    with pytest.raises(CtyError, match="bad dynamic type"):
        cty.decode(data, DYNAMIC)


# ---- round trips ------------------------------------------------------------------------


def test_type_json_round_trip() -> None:
    ty = ObjectType.of(
        {"a": ListType(MapType(STRING)), "b": TupleType((NUMBER, BOOL)), "c": SetType(DYNAMIC)}
    )
    assert cty.type_from_json(cty.type_to_json(ty)) == ty
    assert cty.type_to_json(ty) == [
        "object",
        {"a": ["list", ["map", "string"]], "b": ["tuple", ["number", "bool"]], "c": ["set", "dynamic"]},
    ]


def test_dynamic_with_explicit_type() -> None:
    data = cty.encode(Dynamic(ListType(NUMBER), [1, 2]), DYNAMIC)
    assert data[:1] == b"\x92"
    assert cty.decode(data, DYNAMIC) == [1, 2]


_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(_json_like)
def test_implied_type_round_trip(value: object) -> None:
    ty = cty.implied_type_of(value)
    decoded = cty.decode(cty.encode(value, ty), ty)
    assert decoded == value  # integral floats come back as ints, which compare equal
