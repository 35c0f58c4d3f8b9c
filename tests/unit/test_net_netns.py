"""netns helpers that need no root: naming, paths, existence of plain files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nomad_ctr.net import netns

pytestmark = pytest.mark.unit


def test_name_maps_under_run_dir() -> None:
    assert netns.netns_path("abc") == Path("/var/run/netns/abc")
    assert netns.netns_path("/run/x/ns1") == Path("/run/x/ns1")


@pytest.mark.parametrize("bad", ["", "..", ".", "a b", "rel/path", "x" * 201])
def test_bad_names(bad: str) -> None:
    with pytest.raises(ValueError, match="netns"):
        netns.netns_path(bad)


def test_plain_file_is_not_a_namespace(tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.touch()  # what a crash leaves after the bind mount is gone
    assert not netns.netns_exists(stale)
    assert not netns.netns_exists(tmp_path / "missing")


def test_own_namespace_file_is_a_namespace() -> None:
    assert netns.netns_exists("/proc/self/ns/net")


def test_delete_missing_is_noop(tmp_path: Path) -> None:
    assert netns.delete_netns(tmp_path / "missing") is False


def test_delete_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.touch()
    assert netns.delete_netns(stale) is True
    assert not stale.exists()


def test_nsenter_argv() -> None:
    assert netns.nsenter_argv("n1", ["ip", "a"]) == [
        "nsenter",
        "--net=/var/run/netns/n1",
        "--",
        "ip",
        "a",
    ]
    with pytest.raises(ValueError, match="argv"):
        netns.nsenter_argv("n1", [])


def test_call_in_own_namespace_returns_and_raises() -> None:
    # setns into the namespace we are already in needs no new privileges beyond
    # CAP_SYS_ADMIN; skip when unprivileged.
    import os

    if os.geteuid() != 0:
        pytest.skip("setns needs CAP_SYS_ADMIN")
    assert netns.call_in_netns("/proc/self/ns/net", lambda a, b: a + b, 1, b=2) == 3
    with pytest.raises(KeyError):
        netns.call_in_netns("/proc/self/ns/net", {}.__getitem__, "x")


def test_importing_net_does_not_load_multiprocessing() -> None:
    # pyroute2's netns.create forks through multiprocessing: we must not use it.
    import subprocess

    code = "import sys, nomad_ctr.net; print('multiprocessing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
