"""setup/teardown_network argument checks and the state lock (no root needed)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from nomad_ctr.net import (
    BridgeConfig,
    NetError,
    PortMapping,
    load_attachment,
    setup_network,
    teardown_network,
)
from nomad_ctr.net.state import ContainerLock, read_state, write_state

pytestmark = pytest.mark.unit


@pytest.fixture()
def config(tmp_path: Path) -> BridgeConfig:
    return BridgeConfig(state_dir=tmp_path / "state", ipam_data_dir=tmp_path / "ipam")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"container_id": "bad id"}, "container_id"),
        ({"netns_path": "relative/ns"}, "netns_path: must be absolute"),
        ({"ifname": "x" * 16}, "ifname"),
        ({"ports": [PortMapping(80, 80), PortMapping(80, 81)]}, "mapped twice"),
    ],
)
def test_bad_arguments_rejected_before_anything_is_recorded(
    config: BridgeConfig, kwargs: dict, match: str
) -> None:
    args = {"container_id": "c1", "netns_path": "/var/run/netns/none", **kwargs}
    cid = args.pop("container_id")
    ns = args.pop("netns_path")
    with pytest.raises(ValueError, match=match):
        setup_network(cid, ns, config=config, **args)
    assert not config.state_dir.exists() or not any(config.state_dir.iterdir())


def test_missing_namespace_is_a_net_error_and_leaves_nothing(
    config: BridgeConfig, tmp_path: Path
) -> None:
    with pytest.raises(NetError, match="no network namespace at"):
        setup_network("c1", str(tmp_path / "nons"), config=config)
    assert list(config.state_dir.iterdir()) == []  # neither state nor lock file


def test_teardown_of_unknown_container(config: BridgeConfig) -> None:
    assert teardown_network("never-set-up", config=config) is False
    assert load_attachment("never-set-up", config=config) is None
    assert list(config.state_dir.iterdir()) == []


def test_state_roundtrip_and_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "s" / "c1.json"
    write_state(path, {"version": 1, "x": [1, 2]})
    assert read_state(path) == {"version": 1, "x": [1, 2]}
    assert oct(os.stat(path.parent).st_mode & 0o777) == "0o700"
    write_state(path, {"version": 99})
    with pytest.raises(NetError, match="unknown format"):
        read_state(path)
    path.write_text("{not json")
    with pytest.raises(NetError, match="unreadable"):
        read_state(path)


def test_lock_waiter_ends_up_holding_the_file_at_the_path(tmp_path: Path) -> None:
    """The holder unlinks the lock file; the waiter must not keep a lock on the
    unlinked inode (a third party would then lock a new file concurrently)."""
    first = ContainerLock(tmp_path, "c1").__enter__()
    seen: list[bool] = []
    entered = threading.Event()

    def waiter() -> None:
        with ContainerLock(tmp_path, "c1") as lock:
            entered.set()
            seen.append(
                lock.path.exists() and os.stat(lock.path).st_ino == os.fstat(lock.fd).st_ino
            )

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not entered.wait(0.2)  # blocked while the first holder has it
    first.remove = True
    first.__exit__(None, None, None)
    thread.join(10)
    assert seen == [True]


def test_attachment_id() -> None:
    from nomad_ctr.net import attachment_id

    assert attachment_id("nomad", "web-1") == "nomad.web-1"
    with pytest.raises(ValueError, match="'bad ns'"):
        attachment_id("bad ns", "web")
