"""Masquerade cleanup: which iptables rules are matched and how they are deleted.

A recording stand-in for the iptables binary (first on PATH) prints a real
`iptables -S` listing; the real iptables is exercised in tests/net.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from nomad_ctr.net.iptables import masquerade_comment, remove_masquerade_rules

pytestmark = pytest.mark.unit

LISTING = r"""-P POSTROUTING ACCEPT
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A POSTROUTING -s 10.89.1.3/32 -m comment --comment "name: \"net1\" id: \"abc\"" -j CNI-aaaa
-A POSTROUTING -s 10.89.1.4/32 -m comment --comment "name: \"net1\" id: \"abcd\"" -j CNI-bbbb
-A POSTROUTING -s 10.89.1.5/32 -m comment --comment "name: \"net2\" id: \"abc\"" -j CNI-cccc
"""

FAKE = """#!{python}
import sys
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(repr(args) + "\\n")
if "-S" in args:
    sys.stdout.write(open({listing!r}).read())
"""


@pytest.fixture()
def fake_iptables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    listing = tmp_path / "listing"
    listing.write_text(LISTING)
    log = tmp_path / "log"
    binary = tmp_path / "iptables"
    binary.write_text(FAKE.format(python=sys.executable, log=str(log), listing=str(listing)))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    return log


def _calls(log: Path) -> list[list[str]]:
    import ast

    return [ast.literal_eval(line) for line in log.read_text().splitlines()]


def test_comment_format() -> None:
    assert masquerade_comment("net1", "abc") == 'name: "net1" id: "abc"'


def test_removes_only_the_exact_container_and_network(fake_iptables: Path) -> None:
    assert remove_masquerade_rules("net1", "abc") == 1
    calls = _calls(fake_iptables)
    assert calls[0] == ["-w", "-t", "nat", "-S", "POSTROUTING"]
    assert calls[1] == [
        "-w", "-t", "nat", "-D", "POSTROUTING", "-s", "10.89.1.3/32", "-m", "comment",
        "--comment", 'name: "net1" id: "abc"', "-j", "CNI-aaaa",
    ]  # fmt: skip
    assert calls[2] == ["-w", "-t", "nat", "-F", "CNI-aaaa"]
    assert calls[3] == ["-w", "-t", "nat", "-X", "CNI-aaaa"]
    assert len(calls) == 4


def test_nothing_to_remove(fake_iptables: Path) -> None:
    assert remove_masquerade_rules("net3", "abc") == 0
    assert len(_calls(fake_iptables)) == 1
