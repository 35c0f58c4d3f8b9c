"""Root-only networking tests: real namespaces, real CNI plugins, real iptables.

Every name is unique to this test run (netns prefix, bridge, network name,
subnet, state and IPAM dirs in a temp dir) and everything is removed at the
end, also after failures. Traffic stays on 127.0.0.0/8 and inside namespaces
these tests create.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from nomad_ctr.net import (
    BridgeConfig,
    delete_netns,
    list_netns,
    netns_name_for,
    remove_bridge,
    teardown_network,
)

PLUGIN_DIR = Path("/usr/lib/cni")
_REQUIRED_TOOLS = ("ip", "nsenter", "unshare", "iptables-save")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    missing = [t for t in _REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    for plugin in ("bridge", "host-local", "portmap", "loopback", "firewall"):
        if not (PLUGIN_DIR / plugin).exists():
            return f"CNI plugin {plugin} not found in {PLUGIN_DIR}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.net)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
        return
    if reason := _skip_reason():
        # CI sets NOMAD_CTR_REQUIRE_STACK=1: a missing plugin must fail there.
        if os.environ.get("NOMAD_CTR_REQUIRE_STACK") == "1":
            pytest.fail(f"NOMAD_CTR_REQUIRE_STACK=1 and {reason}", pytrace=False)
        pytest.skip(reason)


RUN_ID = os.getpid() % 100000
NETNS_PREFIX = f"nctrtest-{RUN_ID}-"
_counter = count(1)


def unique_id(kind: str) -> str:
    return f"nctrtest{RUN_ID}{kind}{next(_counter)}"


@pytest.fixture(scope="session")
def bridge_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeConfig]:
    base = tmp_path_factory.mktemp("net")
    octet = 20 + RUN_ID % 200  # a /24 per run, so parallel runs do not collide
    config = BridgeConfig(
        network_name=f"nctrtest-{RUN_ID}",
        bridge=f"nctrt{RUN_ID}",
        subnet=f"10.89.{octet}.0/24",
        ipam_data_dir=base / "ipam",
        state_dir=base / "state",
    )
    yield config
    # Safety net: undo whatever a failed test left behind.
    for state in config.state_dir.glob("*.json"):
        try:
            teardown_network(state.stem, config=config)
        except Exception:
            pass
        delete_netns(netns_name_for(state.stem))  # made by create_sandbox, if any
    for name in list_netns(NETNS_PREFIX):
        delete_netns(name)
    remove_bridge(config)
    still_there = (Path("/sys/class/net") / config.bridge).exists()
    if still_there:  # ports left attached: remove it anyway, then fail loudly
        subprocess.run(["ip", "link", "del", config.bridge], capture_output=True, check=False)
    assert not still_there, f"bridge {config.bridge} still had ports after the tests"


@pytest.fixture()
def netns_name() -> Iterator[str]:
    name = NETNS_PREFIX + str(next(_counter))
    yield name
    delete_netns(name)


@pytest.fixture()
def container_id(bridge_config: BridgeConfig) -> Iterator[str]:
    cid = unique_id("c")
    yield cid
    try:
        teardown_network(cid, config=bridge_config)
    except Exception:
        pass
