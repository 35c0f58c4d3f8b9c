"""The driver's network step on the real stack: its own CNI network for a task with
neither a group network nor host_network (address, ports, NetworkOverride, teardown on
destroy, rollback and after a plugin restart), and host_network with extra_hosts.

Traffic goes only to 127.0.0.1 and to the task's address on a bridge these tests made
(a test-only subnet, so nothing here clashes with a real driver's default network).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from driverkit import Plugin, start_plugin, task_config

from nomad_ctr import net
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.netplan import bridge_config
from nomad_ctr.driver.state import decode_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from net_helpers import free_host_port, http_get, iptables_rules

pytestmark = [pytest.mark.driver, pytest.mark.integration]

SUBNET = f"10.213.{uuid.uuid4().int % 200 + 20}.0/24"  # test-only, per run
HTTPD = "mkdir -p /tmp/w && echo token-$T > /tmp/w/t.txt && exec httpd -f -p 8080 -h /tmp/w"


@pytest.fixture
def netplugin(stack, namespace: str, ns_client, tmp_path: Path) -> Iterator[Plugin]:
    p = start_plugin(tmp_path, namespace, stack.containerd_address, bridge_subnet=SUBNET)
    try:
        yield p
    finally:
        p.destroy_all_and_close()


@pytest.fixture(scope="module", autouse=True)
def _remove_test_bridge() -> Iterator[None]:
    yield
    from nomad_ctr.driver.config import DriverConfig

    cfg = bridge_config(DriverConfig("io.containerd.runc.v2", bridge_subnet=ipaddress.IPv4Network(SUBNET)))
    net.remove_bridge(cfg)


def wait_http(host: str, port: int, path: str = "/t.txt") -> str:
    """Bounded readiness loop (not a timed assertion)."""
    last: Exception | None = None
    for _ in range(200):
        try:
            return http_get(host, port, path)
        except (OSError, AssertionError) as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"no answer from {host}:{port}: {last}")


def ports(*mappings: tuple[str, int, int]) -> list[driver_pb2.PortMapping]:
    return [driver_pb2.PortMapping(label=label, value=value, to=to) for label, value, to in mappings]


def network_state(plugin: Plugin, task_id: str) -> tuple[str, str, str]:
    """(attachment id, netns path, host veth) of a running task's own network."""
    state = plugin.service.store.get(task_id).state
    cfg = bridge_config(plugin.service.conn.config)
    att = net.load_attachment(state.net_id, config=cfg)
    assert att is not None
    import json

    recorded = json.loads((cfg.state_dir / f"{state.net_id}.json").read_text())
    veths = [i["name"] for i in recorded["result"]["interfaces"] if not i.get("sandbox") and i["name"] != cfg.bridge]
    assert len(veths) == 1, veths
    return state.net_id, att.netns_path, veths[0]


def assert_network_gone(net_id: str, netns: str, veth: str, ip: str, host_port: int | None = None) -> None:
    rules = iptables_rules()
    assert net_id not in rules, "iptables rules left for the task"
    assert f"{ip}/32" not in rules and f"{ip}:" not in rules, "iptables rules left for its address"
    if host_port is not None:
        assert f"--dport {host_port} " not in rules, "port mapping rule left"
    assert not net.netns_exists(netns), f"netns {netns} left"
    assert not Path(netns).exists()
    assert not Path("/sys/class/net", veth).exists(), f"veth {veth} left"
    cfg_dir = bridge_config(None).state_dir
    assert not (cfg_dir / f"{net_id}.json").exists(), "network state file left"


def test_own_cni_network_address_ports_and_teardown(netplugin: Plugin, alloc, images) -> None:
    a = alloc()
    host_port = free_host_port()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", HTTPD]), env={"T": "own"})
    task.resources.ports.extend(ports(("http", host_port, 8080)))
    resp = netplugin.driver.StartTask(driver_pb2.StartTaskRequest(task=task), timeout=120)
    addr = resp.network_override.addr
    assert ipaddress.ip_address(addr) in ipaddress.ip_network(SUBNET)
    assert dict(resp.network_override.port_map) == {"http": 8080}
    net_id, netns, veth = network_state(netplugin, task.id)
    assert decode_state(resp.handle.driver_state).net_id == net_id
    # eth0 inside has the address (not only loopback)
    out = netplugin.driver.ExecTask(driver_pb2.ExecTaskRequest(task_id=task.id, command=["ifconfig", "eth0"]),
                                    timeout=30)
    assert f"inet addr:{addr}" in out.stdout.decode()
    hosts = netplugin.driver.ExecTask(driver_pb2.ExecTaskRequest(task_id=task.id, command=["cat", "/etc/hosts"]),
                                      timeout=30).stdout.decode()
    assert f"{addr}\t" in hosts
    # reachable from the host at its address, and on 127.0.0.1:<host port> through portmap
    assert wait_http(addr, 8080) == "token-own\n"
    assert wait_http("127.0.0.1", host_port) == "token-own\n"
    inspect = netplugin.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id), timeout=30)
    assert inspect.network_override.addr == addr
    netplugin.destroy(task.id)
    assert_network_gone(net_id, netns, veth, addr, host_port)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", host_port), timeout=2).close()


def test_network_torn_down_after_plugin_restart(netplugin: Plugin, alloc, images, stack, tmp_path) -> None:
    a = alloc()
    host_port = free_host_port()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", HTTPD]), env={"T": "rec"})
    task.resources.ports.extend(ports(("http", host_port, 8080)))
    handle = netplugin.start(task)
    net_id, netns, veth = network_state(netplugin, task.id)
    addr = net.load_attachment(net_id, config=bridge_config(netplugin.service.conn.config)).ip
    assert wait_http("127.0.0.1", host_port) == "token-rec\n"
    netplugin.close()  # the plugin dies; the task and its network stay
    assert wait_http(addr, 8080) == "token-rec\n"
    new = start_plugin(tmp_path, netplugin.namespace, stack.containerd_address, bridge_subnet=SUBNET)
    try:
        stored = driver_pb2.TaskHandle()
        stored.CopyFrom(handle)
        stored.config.msgpack_driver_config = b""
        new.driver.RecoverTask(driver_pb2.RecoverTaskRequest(handle=stored), timeout=30)
        inspect = new.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id), timeout=30)
        assert inspect.network_override.addr == addr
        assert dict(inspect.network_override.port_map) == {"http": 8080}
        new.destroy(task.id)
        assert_network_gone(net_id, netns, veth, addr, host_port)
    finally:
        new.close()


def test_failed_start_rolls_the_network_back(netplugin: Plugin, alloc, images) -> None:
    a = alloc()  # other tests may run alongside: look only at this alloc's names
    task = a.task(task_config(image=images.plain, command="/no/such/binary"))
    with pytest.raises(grpc.RpcError):
        netplugin.start(task)
    assert not [n for n in net.list_netns("nomad-ctr-") if a.alloc_id in n]
    assert a.alloc_id not in iptables_rules()
    assert not list(bridge_config(None).state_dir.glob(f"*{a.alloc_id}*"))


def test_none_isolation_gets_loopback_only(netplugin: Plugin, alloc, images) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", "cat /proc/net/dev; sleep 30"]),
                  network_isolation_spec=driver_pb2.NetworkIsolationSpec(mode=driver_pb2.NetworkIsolationSpec.NONE))
    resp = netplugin.driver.StartTask(driver_pb2.StartTaskRequest(task=task), timeout=120)
    assert not resp.HasField("network_override")
    out = a.stdout.wait_for("lo:")
    assert "eth0" not in out
    own = decode_state(resp.handle.driver_state).own_netns
    assert own and net.netns_exists(own)
    netplugin.destroy(task.id)
    assert not net.netns_exists(own)


def test_host_network_with_extra_hosts(netplugin: Plugin, alloc, images) -> None:
    a = alloc()
    script = "cat /etc/hosts; echo ==; cat /etc/resolv.conf; echo END; sleep 30"
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", script], host_network=True,
                              extra_hosts=["postgres:127.0.1.1", "redis:127.0.1.2"]))
    resp = netplugin.driver.StartTask(driver_pb2.StartTaskRequest(task=task), timeout=120)
    assert not resp.HasField("network_override")
    hosts, resolv = a.stdout.wait_for("END").split("END")[0].split("==\n")
    assert hosts.startswith(Path("/etc/hosts").read_text())
    assert "127.0.1.1\tpostgres\n" in hosts and "127.0.1.2\tredis\n" in hosts
    assert resolv == Path("/etc/resolv.conf").read_text()
    # the host's own network: the same interfaces
    out = netplugin.driver.ExecTask(driver_pb2.ExecTaskRequest(task_id=task.id, command=["cat", "/proc/net/dev"]),
                                    timeout=30).stdout.decode()
    host_ifaces = {ln.split(":")[0].strip() for ln in Path("/proc/net/dev").read_text().splitlines()[2:]}
    assert {ln.split(":")[0].strip() for ln in out.splitlines()[2:]} == host_ifaces
    etc_dir = decode_state(resp.handle.driver_state).etc_dir
    netplugin.destroy(task.id)
    assert etc_dir and not Path(etc_dir).exists()


def test_host_network_without_extra_hosts_mounts_the_hosts_files(netplugin: Plugin, alloc, images) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sh",
                              args=["-c", "cat /etc/hosts /etc/resolv.conf; echo END; sleep 30"], host_network=True))
    netplugin.start(task)
    out = a.stdout.wait_for("END")
    assert out.startswith(Path("/etc/hosts").read_text() + Path("/etc/resolv.conf").read_text())
    netplugin.destroy(task.id)


def test_untracked_destroy_tears_down_network_of_a_vanished_container(
    netplugin: Plugin, alloc, images, ns_client, stack, tmp_path
) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sleep", args=["300"]))
    handle = netplugin.start(task)
    net_id, netns, veth = network_state(netplugin, task.id)
    addr = net.load_attachment(net_id, config=bridge_config(netplugin.service.conn.config)).ip
    netplugin.close()
    ns_client.containers.get(decode_state(handle.driver_state).container_id).delete(force=True)
    new = start_plugin(tmp_path, netplugin.namespace, stack.containerd_address, bridge_subnet=SUBNET)
    try:
        with pytest.raises(grpc.RpcError):  # the container is gone: recovery fails
            new.driver.RecoverTask(driver_pb2.RecoverTaskRequest(handle=handle), timeout=30)
        new.destroy(task.id)  # what Nomad does next
        assert_network_gone(net_id, netns, veth, addr)
    finally:
        new.close()
