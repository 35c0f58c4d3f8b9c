"""containers.run(network="bridge", ports=...): a netns of its own attached with CNI
(nomad_ctr.net), a published port answering on 127.0.0.1 while the container runs,
nothing left afterwards (netns, veth, iptables rules, state). Needs root.

Traffic only to 127.0.0.1. The container stops itself when the test fetches
/cgi-bin/stop (busybox httpd's CGI), so no timing is involved.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import socket
import subprocess
import time

import pytest

from nomad_ctr import Client, errors, net

pytestmark = [pytest.mark.integration, pytest.mark.net]

SCRIPT = r"""
mkdir -p /tmp/w/cgi-bin
echo "token-$1" > /tmp/w/t.txt
printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho stopping\ntouch /tmp/stop\n' > /tmp/w/cgi-bin/stop
chmod +x /tmp/w/cgi-bin/stop
httpd -p 8080 -h /tmp/w
ip=$(ifconfig eth0 | sed -n 's/.*inet addr:\([0-9.]*\).*/\1/p')
echo "addr=$ip"
while [ ! -e /tmp/stop ]; do sleep 0.1; done
"""


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, iptables)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        return resp.read().decode()
    finally:
        conn.close()


def wait_get(port: int, path: str) -> str:
    """Bounded readiness loop (not a timed assertion)."""
    last: Exception | None = None
    for _ in range(400):
        try:
            return get(port, path)
        except (OSError, AssertionError) as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"nothing answered on 127.0.0.1:{port}{path}: {last}")


def nat_rules() -> str:
    return subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True, check=True).stdout


def assert_nothing_left(client: Client, cid: str, port: int) -> None:
    aid = net.attachment_id(client.namespace, cid)
    assert not net.netns_exists(net.netns_name_for(aid))
    assert net.load_attachment(aid) is None
    rules = nat_rules()
    assert aid not in rules and f"--dport {port} " not in rules
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.parametrize("style", ["dict", "PortMapping"])
def test_run_bridge_publishes_a_port(client: Client, plain: str, style: str) -> None:
    port = free_port()
    ports = {8080: port} if style == "dict" else [net.PortMapping(port, 8080)]
    cid = f"run-net-{style.lower()}-{os.getpid()}"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(client.containers.run, plain, ["sh", "-c", SCRIPT, "sh", style], id=cid,
                          network="bridge", ports=ports, timeout=120)
        try:
            assert wait_get(port, "/t.txt") == f"token-{style}\n"
            aid = net.attachment_id(client.namespace, cid)
            att = net.load_attachment(aid)
            assert att is not None and att.netns_path.endswith(net.netns_name_for(aid))
        finally:
            try:
                get(port, "/cgi-bin/stop")
            except (OSError, AssertionError):
                pass
        result = fut.result(120)
    assert result.exit_code == 0, result.stderr
    assert f"addr={att.ip}" in result.stdout.decode()
    assert_nothing_left(client, cid, port)


def test_run_bridge_kept_container_keeps_network_until_delete(client: Client, plain: str) -> None:
    cid = f"run-net-keep-{os.getpid()}"
    result = client.containers.run(plain, ["sh", "-c", "ifconfig eth0"], id=cid, network="bridge",
                                   remove=False, timeout=120)
    assert result.exit_code == 0 and b"inet addr:" in result.stdout
    aid = net.attachment_id(client.namespace, cid)
    assert net.load_attachment(aid) is not None
    client.containers.get(cid).delete(force=True)
    assert net.load_attachment(aid) is None
    assert not net.netns_exists(net.netns_name_for(aid))


def test_run_network_bad_input(client: Client, plain: str) -> None:
    before = set(net.list_netns("nomad-ctr-"))
    with pytest.raises(errors.InvalidArgument, match="^network="):
        client.containers.run(plain, ["true"], network="overlay")
    with pytest.raises(errors.InvalidArgument, match="^ports="):
        client.containers.run(plain, ["true"], ports={80: 8080})  # no network
    with pytest.raises(errors.InvalidArgument, match="^ports="):
        client.containers.run(plain, ["true"], network="bridge", ports={80: 70000})
    with pytest.raises(errors.InvalidArgument, match="^ports="):
        client.containers.run(plain, ["true"], network="bridge", ports=["80:8080"])
    assert set(net.list_netns("nomad-ctr-")) == before
    assert not any(c.id.startswith("run-") for c in client.containers.list())


def test_run_bridge_never_touches_a_live_container_of_that_id(client: Client, plain: str) -> None:
    cid = f"run-net-live-{os.getpid()}"
    result = client.containers.run(plain, ["true"], id=cid, network="bridge", remove=False, timeout=120)
    assert result.exit_code == 0
    aid = net.attachment_id(client.namespace, cid)
    att = net.load_attachment(aid)
    try:
        with pytest.raises(errors.AlreadyExists):
            client.containers.run(plain, ["true"], id=cid, network="bridge", timeout=120)
        assert net.load_attachment(aid) == att  # the first one's network is untouched
    finally:
        client.containers.get(cid).delete(force=True)
    assert net.load_attachment(aid) is None
