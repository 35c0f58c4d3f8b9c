"""/etc/hosts generation, extra_hosts validation and in-place rewrite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nomad_ctr.net.hosts import HostEntry, build_hosts, parse_extra_host, write_hosts

pytestmark = pytest.mark.unit


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_hostname_with_ip() -> None:
    lines = _lines(build_hosts("postgres", "10.89.0.7"))
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "::1\tlocalhost ip6-localhost ip6-loopback" in lines
    assert "ff02::2\tip6-allrouters" in lines
    assert lines[-1] == "10.89.0.7\tpostgres"


def test_hostname_without_ip_maps_to_127_0_1_1() -> None:
    assert _lines(build_hosts("postgres"))[-1] == "127.0.1.1\tpostgres"


def test_fqdn_also_gets_short_name() -> None:
    assert _lines(build_hosts("db.example.com", "10.0.0.2"))[-1] == "10.0.0.2\tdb.example.com\tdb"


def test_no_ipv6_lines() -> None:
    text = build_hosts("web", "10.0.0.2", ipv6=False)
    assert "::1" not in text and "ip6-" not in text


def test_ipv6_container_address_normalised() -> None:
    assert _lines(build_hosts("web", "FD00:0::2"))[-1] == "fd00::2\tweb"


def test_extra_hosts_appended_in_order() -> None:
    text = build_hosts("web", "10.0.0.2", extra_hosts=["db:10.0.0.5", "v6:[fd00::5]", "raw6:::1"])
    assert _lines(text)[-3:] == ["10.0.0.5\tdb", "fd00::5\tv6", "::1\traw6"]
    assert text.endswith("\n")


@pytest.mark.parametrize(
    "entry, part",
    [
        ("nocolon", "not of the form"),
        ("bad_name:10.0.0.1", "invalid host name 'bad_name'"),
        (":10.0.0.1", "invalid host name ''"),
        ("db:10.0.0.300", "'10.0.0.300' is not an IPv4 or IPv6 address"),
        ("db:", "is not an IPv4 or IPv6 address"),
        ("db:host-gateway", "'host-gateway' is not"),
    ],
)
def test_bad_extra_host_names_the_entry(entry: str, part: str) -> None:
    with pytest.raises(ValueError) as exc:
        build_hosts("web", extra_hosts=[entry])
    assert repr(entry) in str(exc.value)
    assert part in str(exc.value)


def test_parse_extra_host() -> None:
    assert parse_extra_host("api.internal:192.168.1.10") == HostEntry(
        "api.internal", "192.168.1.10"
    )


def test_bad_hostname_and_ip() -> None:
    with pytest.raises(ValueError, match="hostname"):
        build_hosts("not valid")
    with pytest.raises(ValueError, match="ip: not an IPv4 or IPv6 address: 'x'"):
        build_hosts("web", "x")


def test_rewrite_keeps_inode_and_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    write_hosts(path, build_hosts("web", "10.0.0.2", extra_hosts=["a:10.0.0.3", "b:10.0.0.4"]))
    inode = os.stat(path).st_ino
    # A reader holding the file open (like a bind mount) sees the new content.
    with open(path) as held:
        short = build_hosts("web", "10.0.0.9", ipv6=False)
        write_hosts(path, short)
        assert os.stat(path).st_ino == inode
        held.seek(0)
        assert held.read() == short
    assert path.read_text() == short
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
