"""cni_bin_dir on the real stack: the driver's own network runs the CNI plugins found
there. A directory holding them all (links to Debian's) gives the task its network; one
lacking `bridge` fails StartTask naming the plugin and the directory, leaving no
container, snapshot or network namespace behind."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from driverkit import Plugin, start_plugin, task_config
from test_bad_input_images import recoverable
from test_bad_input_options import containerd_objects

from nomad_ctr import net
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import DEFAULT_BRIDGE_SUBNET

pytestmark = [pytest.mark.driver, pytest.mark.integration]

DEBIAN_CNI = Path("/usr/lib/cni")


def bin_dir(tmp_path: Path, *, without: str | None = None) -> Path:
    d = tmp_path / f"cni-bin-{without or 'all'}"
    d.mkdir()
    for plugin in DEBIAN_CNI.iterdir():
        if plugin.name != without:
            (d / plugin.name).symlink_to(plugin)
    return d


@pytest.fixture
def make_plugin(stack, namespace: str, tmp_path: Path) -> Iterator:
    made: list[Plugin] = []

    def make(cni_bin_dir: Path) -> Plugin:
        p = start_plugin(tmp_path, namespace, stack.containerd_address, cni_bin_dir=str(cni_bin_dir))
        made.append(p)
        return p

    yield make
    for p in made:
        p.destroy_all_and_close()


def test_plugins_come_from_cni_bin_dir(make_plugin, alloc, images, ns_client, tmp_path: Path) -> None:
    plugin = make_plugin(bin_dir(tmp_path))
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", "ifconfig eth0; exit 4"]))
    resp = plugin.driver.StartTask(driver_pb2.StartTaskRequest(task=task), timeout=120)
    assert ipaddress.ip_address(resp.network_override.addr) in ipaddress.ip_network(DEFAULT_BRIDGE_SUBNET)
    assert plugin.wait(task.id).result.exit_code == 4
    assert f"inet addr:{resp.network_override.addr}" in a.stdout.wait_for("inet addr")
    plugin.destroy(task.id)

    lacking = make_plugin(bin_dir(tmp_path, without="bridge"))
    before = containerd_objects(ns_client)
    b = alloc()
    with pytest.raises(grpc.RpcError) as exc:
        lacking.start(b.task(task_config(image=images.plain, command="true")))
    err = exc.value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and recoverable(err) is True, err.details()
    assert "bridge" in err.details() and str(tmp_path / "cni-bin-bridge") in err.details(), err.details()
    after = containerd_objects(ns_client)
    assert after["containers"] == before["containers"] and after["snapshots"] == before["snapshots"]
    assert after["leases"] == before["leases"]
    assert not [n for n in net.list_netns("nomad-ctr-") if b.alloc_id in n]
    assert lacking.service.store.all() == []
