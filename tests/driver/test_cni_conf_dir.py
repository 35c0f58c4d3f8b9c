"""cni_conf_dir on the real stack: an operator's `nomad-ctr.conflist` there is the
driver's own network (its name, bridge, subnet and plugins), read at every StartTask;
a malformed one fails StartTask naming the file before anything is created. Real CNI
plugins from /usr/lib/cni, real containerd.

Traffic goes only to 127.0.0.1 and to the task's address on a bridge this test made
(a test-only subnet and bridge name, removed afterwards).
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from driverkit import Plugin, start_plugin, task_config
from test_bad_input_options import containerd_objects

from nomad_ctr import net
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.netplan import OPERATOR_CONFLIST, bridge_config
from nomad_ctr.driver.state import decode_state

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "net"))
from net_helpers import free_host_port, http_get, iptables_rules

pytestmark = [pytest.mark.driver, pytest.mark.integration]

RUN = uuid.uuid4().hex[:6]
OPS_SUBNET = f"10.214.{uuid.uuid4().int % 200 + 20}.0/24"  # test-only, per run
DRIVER_SUBNET = f"10.215.{uuid.uuid4().int % 200 + 20}.0/24"  # bridge_subnet: must not be used
OPS_BRIDGE = f"nctrops{RUN}"
HTTPD = "mkdir -p /tmp/w && echo token-$T > /tmp/w/t.txt && exec httpd -f -p 8080 -h /tmp/w"


def ops_conflist() -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": f"ops-net-{RUN}",
        "plugins": [
            {"type": "loopback"},
            {"type": "bridge", "bridge": OPS_BRIDGE, "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": OPS_SUBNET}]], "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": "/run/nomad-ctr/cni/networks"}},
            {"type": "firewall"},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cni-conf"
    d.mkdir()
    return d


@pytest.fixture
def opsplugin(stack, namespace: str, ns_client, tmp_path: Path, conf_dir: Path) -> Iterator[Plugin]:
    p = start_plugin(tmp_path, namespace, stack.containerd_address, cni_conf_dir=str(conf_dir),
                     bridge_subnet=DRIVER_SUBNET)
    try:
        yield p
    finally:
        p.destroy_all_and_close()
        net.remove_bridge(net.BridgeConfig(bridge=OPS_BRIDGE))


def wait_http(host: str, port: int) -> str:
    """Bounded readiness loop (not a timed assertion)."""
    last: Exception | None = None
    for _ in range(200):
        try:
            return http_get(host, port, "/t.txt")
        except (OSError, AssertionError) as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"no answer from {host}:{port}: {last}")


def write_conflist(conf_dir: Path, content: str) -> Path:
    path = conf_dir / OPERATOR_CONFLIST
    path.write_text(content)
    path.chmod(0o644)
    return path


def test_operator_conflist_is_the_tasks_network(opsplugin: Plugin, alloc, images, conf_dir: Path) -> None:
    write_conflist(conf_dir, json.dumps(ops_conflist()))
    a = alloc()
    host_port = free_host_port()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", HTTPD]), env={"T": "ops"})
    task.resources.ports.extend([driver_pb2.PortMapping(label="http", value=host_port, to=8080)])
    resp = opsplugin.driver.StartTask(driver_pb2.StartTaskRequest(task=task), timeout=120)
    addr = resp.network_override.addr
    assert ipaddress.ip_address(addr) in ipaddress.ip_network(OPS_SUBNET)
    # inside: eth0 on the operator's subnet; on the host: its veth on the operator's bridge
    out = opsplugin.driver.ExecTask(driver_pb2.ExecTaskRequest(task_id=task.id, command=["ifconfig", "eth0"]),
                                    timeout=30).stdout.decode()
    assert f"inet addr:{addr}" in out
    assert any(Path("/sys/class/net", OPS_BRIDGE, "brif").iterdir())
    net_id = decode_state(resp.handle.driver_state).net_id
    state_file = bridge_config(None).state_dir / f"{net_id}.json"
    recorded = json.loads(state_file.read_text())
    assert recorded["network_name"] == f"ops-net-{RUN}" and recorded["conflist"] == ops_conflist()
    # its portmap publishes Nomad's port, also on 127.0.0.1
    assert wait_http(addr, 8080) == "token-ops\n"
    assert wait_http("127.0.0.1", host_port) == "token-ops\n"
    netns = net.load_attachment(net_id, config=bridge_config(opsplugin.service.conn.config)).netns_path
    opsplugin.destroy(task.id)
    assert not net.netns_exists(netns) and not state_file.exists()
    rules = iptables_rules()
    assert net_id not in rules and f"--dport {host_port} " not in rules


def test_malformed_conflist_fails_before_anything_is_created(
    opsplugin: Plugin, alloc, images, ns_client, conf_dir: Path
) -> None:
    path = write_conflist(conf_dir, '{"cniVersion": "1.0.0", "name": "x", "plugins": [}')
    before = containerd_objects(ns_client)
    a = alloc()
    task = a.task(task_config(image=images.plain, command="true"))
    with pytest.raises(grpc.RpcError) as exc:
        opsplugin.start(task)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith(f'invalid driver config: cni_conf_dir: "{path}" is not valid JSON (')
    assert containerd_objects(ns_client) == before  # not even the image was pulled
    assert not [n for n in net.list_netns("nomad-ctr-") if a.alloc_id in n]
    assert opsplugin.service.store.all() == []
    # read at every start: once the operator fixes the file, the next start uses it
    write_conflist(conf_dir, json.dumps(ops_conflist()))
    ok = a.task(task_config(image=images.plain, command="sh", args=["-c", "ifconfig eth0; exit 3"]))
    opsplugin.start(ok)
    assert opsplugin.wait(ok.id).result.exit_code == 3
    assert f"inet addr:{OPS_SUBNET.rsplit('.', 1)[0]}." in a.stdout.wait_for("inet addr")
