"""Small helpers for the root networking tests (all traffic local)."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path

from nomad_ctr.net import BridgeConfig, netns_exists, popen_in_netns


def free_host_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(host: str, port: int, path: str = "/token.txt") -> str:
    # http.client ignores *_proxy variables (urllib would not).
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        return resp.read().decode()
    finally:
        conn.close()


def start_http_server(netns: str, port: int, root: Path) -> subprocess.Popen[bytes]:
    return popen_in_netns(
        netns,
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "0.0.0.0",
            "--directory",
            str(root),
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until_listening(host: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    """Bounded readiness loop (not a timed assertion): 200 tries."""
    for _ in range(200):
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server on {host}:{port} never accepted a connection")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def iptables_rules() -> str:
    out = []
    for table in ("nat", "filter"):
        out.append(
            subprocess.run(
                ["iptables-save", "-t", table], capture_output=True, text=True, check=True
            ).stdout
        )
    return "\n".join(out)


def bridge_ports(bridge: str) -> list[str]:
    proc = subprocess.run(
        ["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True, check=False
    )
    return [line.split(":")[1].strip().split("@")[0] for line in proc.stdout.splitlines()]


def host_link_exists(name: str) -> bool:
    return (Path("/sys/class/net") / name).exists()


def ipam_reservations(config: BridgeConfig) -> dict[str, str]:
    """host-local's files: one per reserved IP, holding the container ID."""
    netdir = Path(config.ipam_data_dir) / config.network_name
    if not netdir.exists():
        return {}
    return {
        p.name: p.read_text().splitlines()[0]
        for p in netdir.iterdir()
        if p.name[0].isdigit() or ":" in p.name
    }


def assert_nothing_left(
    config: BridgeConfig, container_id: str, ip: str, veth: str, netns: str
) -> None:
    rules = iptables_rules()
    assert container_id not in rules, "iptables rules left for the container"
    assert f"{ip}/32" not in rules and f"{ip}:" not in rules, "iptables rules left for its IP"
    assert ip not in ipam_reservations(config), "IPAM reservation not released"
    assert not host_link_exists(veth), f"host veth {veth} left"
    assert veth not in bridge_ports(config.bridge)
    assert not netns_exists(netns), f"netns {netns} left"
    assert not (Path(config.state_dir) / f"{container_id}.json").exists(), "state file left"
    assert not (Path(config.state_dir) / f"{container_id}.lock").exists(), "lock file left"


def host_veth(config: BridgeConfig, container_id: str) -> str:
    """The host side of the container's veth pair, from the recorded ADD result."""
    import json

    state = json.loads((Path(config.state_dir) / f"{container_id}.json").read_text())
    names = [
        i["name"]
        for i in state["result"]["interfaces"]
        if not i.get("sandbox") and i["name"] != config.bridge
    ]
    assert len(names) == 1, names
    return names[0]
