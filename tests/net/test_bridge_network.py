"""The bridge network end to end: real netns, CNI plugins, iptables, traffic.

A TCP (HTTP) server runs inside a namespace we create; the host reaches it via
the container IP and via 127.0.0.1:<host port> (portmap with snat).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from net_helpers import (
    assert_nothing_left,
    bridge_ports,
    free_host_port,
    host_veth,
    http_get,
    ipam_reservations,
    iptables_rules,
    start_http_server,
    stop,
    wait_until_listening,
)

from nomad_ctr.net import (
    BridgeConfig,
    CNIError,
    NetError,
    PortMapping,
    check_network,
    create_netns,
    create_sandbox,
    delete_netns,
    destroy_sandbox,
    load_attachment,
    netns_exists,
    netns_name_for,
    run_in_netns,
    setup_network,
    teardown_network,
)

CONTAINER_PORT = 8080


def test_port_mapping_reaches_server_in_netns(
    bridge_config: BridgeConfig, netns_name: str, container_id: str, tmp_path: Path
) -> None:
    path = create_netns(netns_name)
    host_port = free_host_port()
    att = setup_network(
        container_id, path, ports=[PortMapping(host_port, CONTAINER_PORT)], config=bridge_config
    )
    subnet = ipaddress.ip_network(bridge_config.subnet)
    assert ipaddress.ip_address(att.ip) in subnet
    assert att.gateway == str(next(subnet.hosts()))
    assert att.prefix_len == subnet.prefixlen
    assert att.interface == "eth0" and att.netns_path == str(path)
    assert att.ports == (PortMapping(host_port, CONTAINER_PORT),)
    veth = host_veth(bridge_config, container_id)
    assert veth in bridge_ports(bridge_config.bridge)
    assert ipam_reservations(bridge_config)[att.ip] == container_id
    # Inside: eth0 has the address, the default route goes to the gateway.
    addrs = run_in_netns(path, ["ip", "-o", "addr", "show", "eth0"], capture_output=True, text=True)
    assert f"{att.ip}/{att.prefix_len}" in addrs.stdout
    routes = run_in_netns(path, ["ip", "route"], capture_output=True, text=True)
    assert f"default via {att.gateway}" in routes.stdout
    # portmap turned on what 127.0.0.1 -> container needs.
    sysctl = Path(f"/proc/sys/net/ipv4/conf/{bridge_config.bridge}/route_localnet")
    assert sysctl.read_text().strip() == "1"

    root = tmp_path / "www"
    root.mkdir()
    token = f"hello from {container_id}\n"
    (root / "token.txt").write_text(token)
    server = start_http_server(netns_name, CONTAINER_PORT, root)
    try:
        wait_until_listening(att.ip, CONTAINER_PORT, server)
        assert http_get(att.ip, CONTAINER_PORT) == token
        assert http_get("127.0.0.1", host_port) == token
        check_network(container_id, config=bridge_config)
    finally:
        stop(server)

    assert teardown_network(container_id, config=bridge_config) is True
    assert delete_netns(path) is True
    assert_nothing_left(bridge_config, container_id, att.ip, veth, str(path))
    assert teardown_network(container_id, config=bridge_config) is False  # idempotent


def test_teardown_from_a_new_process_after_netns_removed(
    bridge_config: BridgeConfig, netns_name: str, container_id: str
) -> None:
    """A crash/restart: setup in one process, netns gone, teardown in another."""
    path = create_netns(netns_name)
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from nomad_ctr.net import BridgeConfig, PortMapping, setup_network\n"
        "cfg = BridgeConfig(**json.loads(sys.argv[1]))\n"
        "a = setup_network(sys.argv[2], sys.argv[3], ports=[PortMapping(int(sys.argv[4]), 80)], config=cfg)\n"
        "print(a.ip)\n"
    )
    cfg_args = {
        "network_name": bridge_config.network_name,
        "bridge": bridge_config.bridge,
        "subnet": bridge_config.subnet,
        "ipam_data_dir": str(bridge_config.ipam_data_dir),
        "state_dir": str(bridge_config.state_dir),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            json.dumps(cfg_args),
            container_id,
            str(path),
            str(free_host_port()),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    ip = out.stdout.strip()
    veth = host_veth(bridge_config, container_id)
    assert container_id in iptables_rules()
    delete_netns(path)  # the veth pair dies with the namespace
    assert teardown_network(container_id, config=bridge_config) is True
    assert_nothing_left(bridge_config, container_id, ip, veth, str(path))


def test_failed_setup_rolls_back(
    bridge_config: BridgeConfig, netns_name: str, container_id: str, tmp_path: Path
) -> None:
    """portmap missing: bridge and IPAM already ran; all of it must be undone."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("loopback", "bridge", "host-local", "firewall"):
        os.symlink(Path("/usr/lib/cni") / name, plugins / name)
    broken = BridgeConfig(
        network_name=bridge_config.network_name,
        bridge=bridge_config.bridge,
        subnet=bridge_config.subnet,
        ipam_data_dir=bridge_config.ipam_data_dir,
        state_dir=bridge_config.state_dir,
        plugin_dirs=(plugins,),
    )
    path = create_netns(netns_name)
    before = set(bridge_ports(bridge_config.bridge))
    with pytest.raises(CNIError) as exc:
        setup_network(container_id, path, ports=[PortMapping(free_host_port(), 80)], config=broken)
    assert exc.value.plugin == "portmap"
    assert not any(v == container_id for v in ipam_reservations(bridge_config).values())
    assert container_id not in iptables_rules()
    assert set(bridge_ports(bridge_config.bridge)) <= before
    assert not (bridge_config.state_dir / f"{container_id}.json").exists()
    assert not (bridge_config.state_dir / f"{container_id}.lock").exists()
    links = run_in_netns(path, ["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "eth0" not in links


def test_second_setup_is_refused_and_check_detects_damage(
    bridge_config: BridgeConfig, netns_name: str, container_id: str
) -> None:
    path = create_netns(netns_name)
    att = setup_network(container_id, path, config=bridge_config)
    with pytest.raises(NetError, match="already attached"):
        setup_network(container_id, path, config=bridge_config)
    assert load_attachment(container_id, config=bridge_config) == att
    run_in_netns(path, ["ip", "addr", "flush", "dev", "eth0"], check=True)
    with pytest.raises(CNIError):
        check_network(container_id, config=bridge_config)
    # The bridge plugin finds no address to unmasquerade; we remove its rules.
    assert teardown_network(container_id, config=bridge_config) is True
    assert container_id not in iptables_rules()
    assert att.ip not in ipam_reservations(bridge_config)


def test_two_containers_get_distinct_ips_and_reach_each_other(
    bridge_config: BridgeConfig, tmp_path: Path
) -> None:
    ids = ["nctrtest-pair-a-" + str(os.getpid()), "nctrtest-pair-b-" + str(os.getpid())]
    try:
        a, b = (create_sandbox(i, config=bridge_config) for i in ids)
        assert a.ip != b.ip
        root = tmp_path / "www"
        root.mkdir()
        (root / "token.txt").write_text("peer\n")
        server = start_http_server(a.netns_path, CONTAINER_PORT, root)
        try:
            wait_until_listening(a.ip, CONTAINER_PORT, server)
            client_code = (
                "import http.client as h\n"
                f"c = h.HTTPConnection({a.ip!r}, {CONTAINER_PORT}, timeout=5)\n"
                "c.request('GET', '/token.txt')\n"
                "print(c.getresponse().read().decode(), end='')\n"
            )
            got = run_in_netns(
                b.netns_path,
                [sys.executable, "-c", client_code],
                capture_output=True,
                text=True,
                check=True,
            )
            assert got.stdout == "peer\n"
        finally:
            stop(server)
    finally:
        for i in ids:
            destroy_sandbox(i, config=bridge_config)
    for i in ids:
        assert not netns_exists(netns_name_for(i))
        assert i not in iptables_rules()
    destroy_sandbox(ids[0], config=bridge_config)  # idempotent


def test_call_in_netns_sockets_are_isolated(netns_name: str) -> None:
    import socket

    from nomad_ctr.net import call_in_netns

    path = create_netns(netns_name)

    def listen() -> socket.socket:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        return s

    server = call_in_netns(path, listen)
    port = server.getsockname()[1]
    try:
        # The namespace's loopback is not the host's: the host is refused...
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # ...while a client inside the namespace connects.
        call_in_netns(
            path, lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close()
        )
    finally:
        server.close()


def test_udp_mapping_bound_to_127_0_0_1(
    bridge_config: BridgeConfig, netns_name: str, container_id: str
) -> None:
    import socket

    from nomad_ctr.net import call_in_netns

    path = create_netns(netns_name)
    host_port = free_host_port()
    setup_network(
        container_id,
        path,
        ports=[PortMapping(host_port, 5353, "udp", "127.0.0.1")],
        config=bridge_config,
    )
    rules = iptables_rules()
    assert "-d 127.0.0.1/32" in rules and f"--dport {host_port}" in rules

    def bind_udp() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 5353))
        s.settimeout(5)
        return s

    inside = call_in_netns(path, bind_udp)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"ping", ("127.0.0.1", host_port))
            data, _ = inside.recvfrom(16)
        assert data == b"ping"
    finally:
        inside.close()
    assert teardown_network(container_id, config=bridge_config) is True
    assert f"--dport {host_port}" not in iptables_rules()


def test_nothing_forks_without_exec(
    bridge_config: BridgeConfig,
    netns_name: str,
    container_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With gobridge's Go runtime loaded a bare fork() is unsafe (style C.2).

    subprocess spawns through fork+exec in C and never calls os.fork; anything
    reaching os.fork (multiprocessing, pyroute2's netns.create) would fail here.
    """

    def no_fork() -> int:
        raise AssertionError("os.fork() called")

    monkeypatch.setattr(os, "fork", no_fork)
    path = create_netns(netns_name)
    setup_network(
        container_id, path, ports=[PortMapping(free_host_port(), 80)], config=bridge_config
    )
    assert call_in_netns_ok(path)
    assert teardown_network(container_id, config=bridge_config) is True
    assert delete_netns(path) is True


def call_in_netns_ok(path: object) -> bool:
    from nomad_ctr.net import call_in_netns

    def links() -> set[str]:
        lines = Path("/proc/thread-self/net/dev").read_text().splitlines()[2:]
        return {line.split(":")[0].strip() for line in lines}

    return call_in_netns(str(path), links) == {"lo", "eth0"}


def test_concurrent_setup_of_one_container_attaches_once(
    bridge_config: BridgeConfig, netns_name: str, container_id: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = create_netns(netns_name)

    def attempt(_: int) -> str:
        try:
            return setup_network(container_id, path, config=bridge_config).ip
        except NetError as exc:
            return f"refused: {exc}"

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(attempt, range(3)))
    ips = [o for o in outcomes if not o.startswith("refused")]
    assert len(ips) == 1, outcomes
    assert all("already attached" in o for o in outcomes if o.startswith("refused"))
    owned = [ip for ip, cid in ipam_reservations(bridge_config).items() if cid == container_id]
    assert owned == ips

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(
            pool.map(lambda _: teardown_network(container_id, config=bridge_config), range(3))
        )
    assert sorted(results) == [False, False, True]
    assert not (bridge_config.state_dir / f"{container_id}.lock").exists()
    assert container_id not in iptables_rules()
