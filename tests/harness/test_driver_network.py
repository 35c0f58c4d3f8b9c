"""The driver's own CNI network through the Nomad path (nomad-harness session): a task
without a group network gets an address on a test bridge (NetworkOverride), keeps it
across a plugin crash (a relaunched plugin executable recovers it), and DestroyTask of
the recovered task removes the namespace and its iptables rules.

Traffic only to the task's address on a bridge this test's plugin made.
"""

from __future__ import annotations

import http.client
import ipaddress
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nomad_ctr import net
from nomad_ctr.driver.config import DriverConfig
from nomad_ctr.driver.netplan import bridge_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))

import harness as nh

pytestmark = [pytest.mark.driver, pytest.mark.integration]

SUBNET = f"10.214.{uuid.uuid4().int % 200 + 20}.0/24"  # test-only


@pytest.fixture
def agent(stack: Any, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    ns = f"nctr-harness-net-{uuid.uuid4().hex[:8]}"
    path = nh.write_agent_config(tmp_path / "agent.hcl", address=stack.containerd_address, namespace=ns,
                                 extra={"bridge_subnet": SUBNET})
    yield path, ns
    address = stack.containerd_address
    for cmd in (["tasks", "kill", "-s", "KILL"], ["tasks", "rm", "-f"], ["containers", "rm"]):
        ids = subprocess.run(["ctr", "--address", address, "-n", ns, "containers", "ls", "-q"],
                             capture_output=True, text=True, check=False).stdout.split()
        for cid in ids:
            subprocess.run(["ctr", "--address", address, "-n", ns, *cmd, cid], capture_output=True, check=False)
    for ref in subprocess.run(["ctr", "--address", address, "-n", ns, "images", "ls", "-q"],
                              capture_output=True, text=True, check=False).stdout.split():
        subprocess.run(["ctr", "--address", address, "-n", ns, "images", "rm", ref], capture_output=True,
                       check=False)
    for _ in range(20):
        if subprocess.run(["ctr", "--address", address, "namespaces", "remove", ns],
                          capture_output=True, check=False).returncode == 0:
            break
        time.sleep(0.5)
    net.remove_bridge(bridge_config(DriverConfig("io.containerd.runc.v2",
                                                 bridge_subnet=ipaddress.IPv4Network(SUBNET))))


def wait_http(host: str, port: int) -> str:
    """Bounded readiness loop (not a timed assertion)."""
    last: Exception | None = None
    for _ in range(200):
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request("GET", "/t.txt")
            resp = conn.getresponse()
            if resp.status == 200:
                return resp.read().decode()
        except OSError as exc:
            last = exc
        finally:
            conn.close()
        time.sleep(0.05)
    raise AssertionError(f"no answer from {host}:{port}: {last}")


def test_own_network_survives_plugin_crash_and_is_torn_down(agent: tuple[Path, str], tmp_path: Path,
                                                             images: Any) -> None:
    agent_file, ns = agent
    script = "mkdir -p /tmp/w && echo via-harness > /tmp/w/t.txt && exec httpd -f -p 8080 -h /tmp/w"
    job = nh.write_job(tmp_path / "job.nomad", image=images.plain,
                       config={"command": "sh", "args": ["-c", script]}, kill_timeout="2s")
    with nh.Session(agent=agent_file) as s:
        s.launch()
        task = s.start(job, "main", alloc_root=str(tmp_path / "allocs"))["task"]
        tid = task["task_id"]
        try:
            addr = task["network_override"]["addr"]
            assert ipaddress.ip_address(addr) in ipaddress.ip_network(SUBNET)
            assert wait_http(addr, 8080) == "via-harness\n"
            (netns,) = net.list_netns(f"nomad-ctr-{ns}.")
            s.call("kill_plugin")
            s.launch()  # a new plugin process
            s.call("recover", task_id=tid)
            inspect = s.call("inspect", task_id=tid)["inspect"]
            assert inspect["network_override"]["addr"] == addr
            assert wait_http(addr, 8080) == "via-harness\n"
        finally:
            s.call("destroy", task_id=tid, check=False)
    assert not net.netns_exists(netns)
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert netns.removeprefix("nomad-ctr-") not in rules and f"{addr}/32" not in rules
    assert not list(bridge_config(None).state_dir.glob(f"{ns}.*"))
