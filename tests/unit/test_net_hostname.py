"""Hostname validation and the default hostname helper."""

from __future__ import annotations

import pytest

from nomad_ctr.net.hostname import default_hostname, is_valid_hostname, validate_hostname

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["a", "web-1", "postgres", "db.example.com", "x" * 63, "1abc"])
def test_valid(name: str) -> None:
    assert is_valid_hostname(name)
    assert validate_hostname(name) == name


@pytest.mark.parametrize(
    "name", ["", "-a", "a-", "a_b", "a b", "x" * 64, "a..b", ".a", "ä", "a." * 127 + "a"]
)
def test_invalid(name: str) -> None:
    assert not is_valid_hostname(name)
    with pytest.raises(ValueError, match="hostname"):
        validate_hostname(name)


def test_short_valid_name_kept() -> None:
    assert default_hostname("redis-cache") == "redis-cache"


def test_invalid_chars_replaced_and_lowercased() -> None:
    assert default_hostname("Web_Server.1") == "web-server-1"
    assert default_hostname("__x__") == "x"


def test_long_name_cut_to_63_with_hash() -> None:
    long_a = "task-" + "a" * 80 + "-alloc-1"
    long_b = "task-" + "a" * 80 + "-alloc-2"
    ha, hb = default_hostname(long_a), default_hostname(long_b)
    assert len(ha) == 63 and len(hb) == 63
    assert ha != hb  # same 54-char prefix, different hash
    assert ha.startswith("task-aaaa")
    assert is_valid_hostname(ha)
    assert default_hostname(long_a) == ha  # deterministic


def test_name_without_usable_chars_becomes_hash() -> None:
    h = default_hostname("___")
    assert len(h) == 8 and is_valid_hostname(h)


def test_empty_name_rejected() -> None:
    with pytest.raises(ValueError, match="container_name"):
        default_hostname("")
