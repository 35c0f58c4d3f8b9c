"""resolv.conf: host copy without localhost servers, generated from DNS settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nomad_ctr.net.resolvconf import (
    ResolvConf,
    build_resolv_conf,
    container_resolv_conf,
    parse_resolv_conf,
    write_resolv_conf,
)

pytestmark = pytest.mark.unit

STUB = (
    "# systemd-resolved stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n"
)


def _file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_parse() -> None:
    conf = parse_resolv_conf(
        "; comment\nnameserver 10.0.0.1\nnameserver bogus\nnameserver ::1\n"
        "domain old.example\nsearch a.example b.example\noptions ndots:2\noptions rotate\n"
        "sortlist 10.0.0.0\n"
    )
    assert conf.nameservers == ("10.0.0.1", "::1")
    assert conf.searches == ("a.example", "b.example")
    assert conf.options == ("ndots:2", "rotate")


def test_domain_used_when_no_search() -> None:
    assert parse_resolv_conf("domain x.example\n").searches == ("x.example",)


def test_localhost_servers_removed_keeps_others(tmp_path: Path) -> None:
    host = _file(
        tmp_path,
        "r",
        "nameserver 127.0.0.1\nnameserver 10.1.1.1\nnameserver ::1\nsearch s.example\n",
    )
    conf = container_resolv_conf(host, upstream_path=None)
    assert conf.nameservers == ("10.1.1.1",)
    assert conf.searches == ("s.example",)


def test_stub_only_uses_systemd_resolved_upstream(tmp_path: Path) -> None:
    host = _file(tmp_path, "r", STUB)
    upstream = _file(tmp_path, "u", "nameserver 192.0.2.53\nnameserver 2001:db8::53\n")
    conf = container_resolv_conf(host, upstream_path=upstream)
    assert conf.nameservers == ("192.0.2.53", "2001:db8::53")
    assert conf.options == ("edns0", "trust-ad")  # options and searches of the host kept
    assert conf.searches == ("corp.example",)
    assert container_resolv_conf(host, upstream_path=upstream, ipv6=False).nameservers == (
        "192.0.2.53",
    )


def test_fallback_when_nothing_usable(tmp_path: Path) -> None:
    host = _file(tmp_path, "r", STUB)
    conf = container_resolv_conf(host, upstream_path=tmp_path / "missing")
    assert conf.nameservers == ("8.8.8.8", "8.8.4.4")
    conf = container_resolv_conf(tmp_path / "nohost", upstream_path=None, fallback=["9.9.9.9"])
    assert conf.nameservers == ("9.9.9.9",)


def test_render() -> None:
    text = ResolvConf(("10.0.0.1", "fd00::1"), ("a.example",), ("ndots:5",)).render()
    lines = text.splitlines()
    assert lines[1:] == [
        "nameserver 10.0.0.1",
        "nameserver fd00::1",
        "search a.example",
        "options ndots:5",
    ]
    assert parse_resolv_conf(text) == ResolvConf(
        ("10.0.0.1", "fd00::1"), ("a.example",), ("ndots:5",)
    )


def test_build_from_dns_config() -> None:
    conf = build_resolv_conf(["1.1.1.1", "2606:4700::1111"], ["svc.local."], ["ndots:2", "edns0"])
    assert conf.nameservers == ("1.1.1.1", "2606:4700::1111")
    assert conf.searches == ("svc.local.",)
    assert conf.options == ("ndots:2", "edns0")


@pytest.mark.parametrize(
    "kwargs, field, value",
    [
        ({"servers": ["1.1.1"]}, "dns servers", "'1.1.1'"),
        ({"servers": ["dns.google"]}, "dns servers", "'dns.google'"),
        ({"searches": ["bad domain"]}, "dns searches", "'bad domain'"),
        ({"searches": ["-x.example"]}, "dns searches", "'-x.example'"),
        ({"options": ["ndots 2"]}, "dns options", "'ndots 2'"),
        ({"options": ["ndots:"]}, "dns options", "'ndots:'"),
        ({"options": ["Rotate;rm"]}, "dns options", "'Rotate;rm'"),
        ({"servers": "1.1.1.1"}, "dns servers", "'1.1.1.1'"),
    ],
)
def test_build_validation_names_field_and_value(kwargs: dict, field: str, value: str) -> None:
    with pytest.raises(ValueError) as exc:
        build_resolv_conf(**kwargs)
    assert field in str(exc.value) and value in str(exc.value)


def test_write_in_place(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    write_resolv_conf(path, build_resolv_conf(["10.0.0.1"], ["a.example", "b.example"]))
    inode = os.stat(path).st_ino
    write_resolv_conf(path, build_resolv_conf(["10.0.0.2"]))
    assert os.stat(path).st_ino == inode
    assert parse_resolv_conf(path.read_text()).nameservers == ("10.0.0.2",)
    assert "search" not in path.read_text()
