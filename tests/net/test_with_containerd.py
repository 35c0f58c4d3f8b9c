"""A real runc container joins our namespace: port mapping and /etc files work.

Uses the test containerd through `ctr` (no dependency on the API track), in a
containerd namespace of its own that is removed afterwards.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nomad_ctr.net import (
    BridgeConfig,
    PortMapping,
    create_sandbox,
    destroy_sandbox,
    netns_exists,
    write_etc_files,
)

from net_helpers import free_host_port, iptables_rules

pytestmark = pytest.mark.integration


def _ctr(
    stack: object, ns: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    address = stack.containerd_address  # type: ignore[attr-defined]
    return subprocess.run(
        ["ctr", "-a", address, "-n", ns, *args], capture_output=True, text=True, check=check
    )


@pytest.fixture()
def ctr_namespace(stack: object) -> Iterator[str]:
    if shutil.which("ctr") is None:
        pytest.skip("ctr not installed")
    ns = f"nctr-net-{uuid.uuid4().hex[:6]}"
    yield ns
    for cid in _ctr(stack, ns, "containers", "ls", "-q", check=False).stdout.split():
        _ctr(stack, ns, "tasks", "kill", "-s", "SIGKILL", cid, check=False)
        _ctr(stack, ns, "tasks", "rm", "-f", cid, check=False)
        _ctr(stack, ns, "containers", "rm", cid, check=False)
    for ref in _ctr(stack, ns, "images", "ls", "-q", check=False).stdout.split():
        _ctr(stack, ns, "images", "rm", "--sync", ref, check=False)
    _ctr(stack, ns, "namespaces", "rm", ns, check=False)


def _get(host: str, port: int, path: str) -> str | None:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.read().decode() if resp.status == 200 else None
    except OSError:
        return None


def test_runc_container_in_our_netns(
    stack: object, images: object, ctr_namespace: str, bridge_config: BridgeConfig, tmp_path: Path
) -> None:
    plain = images.plain  # type: ignore[attr-defined]
    _ctr(stack, ctr_namespace, "images", "pull", "--plain-http", plain)
    cid = f"nctrnet-{uuid.uuid4().hex[:8]}"
    host_port = free_host_port()
    att = create_sandbox(cid, ports=[PortMapping(host_port, 8080)], config=bridge_config)
    try:
        files = write_etc_files(
            tmp_path / "etc", hostname="smoke", ip=att.ip, extra_hosts=["db:10.1.2.3"], ipv6=False
        )
        mounts: list[str] = []
        for src, dst in files.mounts():
            mounts += ["--mount", f"type=bind,src={src},dst={dst},options=rbind:ro"]
        script = "mkdir -p /www && cat /etc/hosts > /www/hosts && exec httpd -f -p 8080 -h /www"
        _ctr(
            stack, ctr_namespace, "run", "-d", "--with-ns", f"network:{att.netns_path}",
            *mounts, plain, cid, "sh", "-c", script,
        )  # fmt: skip
        body = None
        for _ in range(200):  # bounded readiness loop, not a timed assertion
            body = _get("127.0.0.1", host_port, "/hosts")
            if body is not None:
                break
            time.sleep(0.05)
        assert body is not None, "container never answered on 127.0.0.1"
        assert f"{att.ip}\tsmoke" in body and "10.1.2.3\tdb" in body
        assert _get(att.ip, 8080, "/hosts") == body
    finally:
        _ctr(stack, ctr_namespace, "tasks", "kill", "-s", "SIGKILL", cid, check=False)
        _ctr(stack, ctr_namespace, "tasks", "rm", "-f", cid, check=False)
        _ctr(stack, ctr_namespace, "containers", "rm", cid, check=False)
        destroy_sandbox(cid, config=bridge_config)
    assert not netns_exists(att.netns_path)
    assert cid not in iptables_rules()
