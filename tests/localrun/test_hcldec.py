"""hcldec-lite against the plugin's own schemas (no containerd): shapes, defaults,
conversions, byte-exact cty msgpack, and errors that name the key."""

from __future__ import annotations

from decimal import Decimal

import msgpack
import pytest

from nomad_ctr.driver import cty
from nomad_ctr.driver.config import parse_driver_config, parse_task_config
from nomad_ctr.driver.config_schema import driver_config_spec, task_config_spec
from nomad_ctr.driver.cty import (
    NUMBER,
    STRING,
    ListType,
    MapType,
    ObjectType,
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
    literal,
    literal_expr,
    obj,
)
from nomad_ctr.localrun.hcldec import HclDecodeError, decode_body
from nomad_ctr.localrun.hclfile import evaluate_body, parse_text

pytestmark = pytest.mark.unit


def body(text: str) -> dict:
    return evaluate_body(parse_text(text))


# ---- the plugin's schemas ---------------------------------------------------------------------


def test_fact_sheet_worked_example_bytes() -> None:
    spec = obj(image=attr("image", STRING, required=True), args=attr("args", ListType(STRING)))
    got = decode_body({"image": "redis"}, spec).msgpack
    assert got == bytes.fromhex("82a461726773c0a5696d616765a57265646973")
    assert decode_body({"image": "redis", "args": ["a"]}, spec).msgpack.endswith(
        bytes.fromhex("a5696d616765a57265646973")
    )
    assert bytes.fromhex("91a161") in decode_body({"image": "redis", "args": ["a"]}, spec).msgpack


def test_empty_agent_config_gets_defaults_and_the_plugin_accepts_it() -> None:
    decoded = decode_body({"containerd_runtime": "io.containerd.runc.v2"}, driver_config_spec())
    assert decoded.value["namespace"] == "nomad"
    assert decoded.value["enabled"] is True
    assert decoded.value["auth"] is None
    config = parse_driver_config(decoded.msgpack)
    assert config.containerd_runtime == "io.containerd.runc.v2"
    assert config.address == "/run/containerd/containerd.sock"


def test_required_driver_option_is_named() -> None:
    with pytest.raises(
        HclDecodeError,
        match=r"^config\.containerd_runtime: the argument 'containerd_runtime' is required",
    ):
        decode_body({}, driver_config_spec())


def test_task_config_round_trips_through_the_plugin_parser() -> None:
    decoded = decode_body(
        body(
            """
            image = "127.0.0.1:5000/x:1"
            args = ["-c", 5, true]
            pids_limit = "64"
            privileged = "false"
            sysctl = { "net.core.somaxconn" = "16" }
            mounts {
              type = "bind"
              source = "/tmp"
              target = "/mnt"
              options = ["ro"]
            }
            """
        ),
        task_config_spec(),
    )
    assert decoded.value["args"] == ["-c", "5", "true"]  # number/bool -> string, as cty converts
    assert decoded.value["pids_limit"] == 64
    assert decoded.value["privileged"] is False
    assert decoded.value["image_pull_timeout"] == "5m"  # Default(Attr, Literal)
    task = parse_task_config(decoded.msgpack)
    assert task.image == "127.0.0.1:5000/x:1"
    assert task.args == ("-c", "5", "true")
    assert task.pids_limit == 64
    assert [m.target for m in task.mounts] == ["/mnt"]


def test_object_form_of_a_list_of_maps_option() -> None:
    # `labels = { ... }` for a list(map(string)) option, the form Nomad's docker docs use
    spec = obj(labels=attr("labels", ListType(MapType(STRING))))
    decoded = decode_body({"labels": {"a.b": 16}}, spec)
    assert decoded.value["labels"] == [{"a.b": "16"}]
    assert msgpack.unpackb(decoded.msgpack) == {"labels": [{"a.b": "16"}]}


def test_any_typed_sysctl_keeps_both_spellings() -> None:
    # the plugin publishes sysctl as `any`: the value keeps its own shape and type
    as_object = decode_body(
        {"image": "x", "sysctl": {"net.core.somaxconn": 16}}, task_config_spec()
    )
    assert msgpack.unpackb(as_object.msgpack)["sysctl"] == {"net.core.somaxconn": 16}
    as_blocks = decode_body({"image": "x", "sysctl": [{"a": "1"}]}, task_config_spec())
    assert msgpack.unpackb(as_blocks.msgpack)["sysctl"] == [{"a": "1"}]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"image": "x", "imgae": "y"},
            r"^config\.imgae: unsupported argument 'imgae'; did you mean 'image'\?",
        ),
        ({}, r"^config\.image: the argument 'image' is required"),
        ({"image": "x", "args": "a b"}, r"^config\.args: a list is required, got a string"),
        (
            {"image": "x", "pids_limit": "lots"},
            r"^config\.pids_limit: a number is required, got the string 'lots'",
        ),
        (
            {"image": "x", "privileged": "yes"},
            r"^config\.privileged: a bool is required, got a string",
        ),
        ({"image": ["x"]}, r"^config\.image: a string is required, got a list"),
        (
            {"image": "x", "mounts": [{"target": "/a", "bogus": 1}]},
            r"^config\.mounts\[0\]\.bogus: unsupported argument",
        ),
        (
            {"image": "x", "mounts": [{}]},
            r"^config\.mounts\[0\]\.target: the argument 'target' is required",
        ),
        (
            {"image": "x", "auth": [{"username": "u"}]},
            r"^config\.auth\.password: the argument 'password' is required",
        ),
        (
            {"image": "x", "auth": [{"username": "u", "password": "p"}] * 2},
            r"^config\.auth: only one 'auth' block",
        ),
        ({"image": "x", "mounts": "x"}, r"^config\.mounts: expected a block, got a string"),
    ],
)
def test_errors_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(HclDecodeError, match=message):
        decode_body(config, task_config_spec())


def test_error_never_echoes_a_password_value() -> None:
    with pytest.raises(HclDecodeError) as info:
        decode_body(
            {"image": "x", "auth": [{"username": "u", "password": ["s3cret"]}]}, task_config_spec()
        )
    assert "s3cret" not in str(info.value)


# ---- every spec kind -----------------------------------------------------------------------


def test_block_set_and_block_list_counts() -> None:
    spec = obj(p=block_set("p", obj(n=attr("n", NUMBER)), min_items=1, max_items=2))
    assert decode_body({"p": [{"n": 1}, {"n": 2}]}, spec).value == {"p": [{"n": 1}, {"n": 2}]}
    with pytest.raises(HclDecodeError, match=r"^config\.p: at least 1 'p' block"):
        decode_body({}, spec)
    with pytest.raises(HclDecodeError, match=r"^config\.p: at most 2 'p' block"):
        decode_body({"p": [{"n": 1}] * 3}, spec)


def test_absent_block_list_is_an_empty_list_and_absent_block_is_null() -> None:
    spec = obj(l=block_list("l", obj(a=attr("a", STRING))), b=block("b", obj(a=attr("a", STRING))))
    decoded = decode_body({}, spec)
    assert decoded.value == {"l": [], "b": None}
    assert msgpack.unpackb(decoded.msgpack) == {"b": None, "l": []}


def test_block_attrs_is_a_map_of_the_element_type() -> None:
    spec = obj(labels=block_attrs("labels", STRING))
    decoded = decode_body(body('labels {\n  a = 1\n  b = "x"\n}\n'), spec)
    assert decoded.value == {"labels": {"a": "1", "b": "x"}}
    assert decoded.type == ObjectType.of({"labels": MapType(STRING)})


def test_block_map_nests_by_label() -> None:
    spec = obj(port=block_map("port", ["name", "proto"], obj(to=attr("to", NUMBER))))
    decoded = decode_body(
        body('port "http" "tcp" { to = 80 }\nport "dns" "udp" { to = 53 }\n'), spec
    )
    assert decoded.value == {"port": {"dns": {"udp": {"to": 53}}, "http": {"tcp": {"to": 80}}}}
    with pytest.raises(HclDecodeError, match="duplicate block"):
        decode_body(body('port "a" "tcp" { to = 1 }\nport "a" "tcp" { to = 2 }\n'), spec)


def test_array_is_a_tuple() -> None:
    spec = array(attr("a", STRING), attr("b", NUMBER))
    decoded = decode_body({"a": "x", "b": "2"}, spec)
    assert decoded.value == ["x", 2]
    assert decoded.type == TupleType((STRING, NUMBER))


def test_literal_defaults_keep_their_own_type() -> None:
    spec = obj(
        l=default(attr("l", ListType(STRING)), literal_expr("[]")), o=literal({"enabled": False})
    )
    decoded = decode_body({}, spec)
    assert decoded.value == {"l": [], "o": {"enabled": False}}
    assert decoded.type == ObjectType.of(
        {"l": TupleType(()), "o": ObjectType.of({"enabled": cty.BOOL})}
    )
    assert msgpack.unpackb(decoded.msgpack) == {"l": [], "o": {"enabled": False}}


def test_any_attribute_is_encoded_with_its_concrete_type() -> None:
    spec = obj(v=attr("v", "any"))
    decoded = decode_body({"v": {"a": [1, "x"]}}, spec)
    # no [type, value] dynamic wrapper: Nomad marshals with the value's own type
    assert msgpack.unpackb(decoded.msgpack) == {"v": {"a": [1, "x"]}}


def test_numbers_follow_the_cty_encoding() -> None:
    spec = obj(n=attr("n", NUMBER))
    assert msgpack.unpackb(decode_body({"n": Decimal("0.1")}, spec).msgpack) == {"n": "0.1"}
    assert msgpack.unpackb(decode_body({"n": Decimal("1.5")}, spec).msgpack) == {"n": 1.5}
    assert msgpack.unpackb(decode_body({"n": 2**64}, spec).msgpack) == {"n": str(2**64)}
