"""The Fingerprint stream over a containerd that goes away and comes back.

First message at once and HEALTHY with the daemon's own version and revision (as
`ctr version` reports them), the runtime and the cgroup version; identical re-sends at
the period; UNHEALTHY with a reason on the same stream once containerd is stopped (the
plugin keeps serving); HEALTHY again after containerd is started. The period is shortened
through fingerprint.FINGERPRINT_EVERY (read per stream). Every wait has a deadline.
"""

from __future__ import annotations

import queue
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from driverkit import RUNTIME, Plugin, StreamReader
from test_containerd_restart import Daemon, daemon, own_plugin  # noqa: F401 - fixtures reused

from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver import fingerprint as fingerprint_module

pytestmark = pytest.mark.driver

PERIOD = 1.0
_FP = driver_pb2.FingerprintResponse
_ATTR = "driver.containerd-driver"


class Stream(StreamReader):
    """The Fingerprint stream, read by a thread."""

    def __init__(self, plugin: Plugin) -> None:
        super().__init__(plugin.driver.Fingerprint(driver_pb2.FingerprintRequest(), timeout=300))

    def until(self, health: int, within: float) -> _FP:
        end = time.monotonic() + within
        seen: list[str] = []
        while (left := end - time.monotonic()) > 0:
            try:
                msg = self.items.get(timeout=left)
            except queue.Empty:
                break
            if msg.health == health:
                return msg
            seen.append(f"{_FP.HealthState.Name(msg.health)}: {msg.health_description}")
        raise AssertionError(f"no {_FP.HealthState.Name(health)} fingerprint within {within}s; saw {seen}"
                             f" (stream ended: {self.ended!r})")


def server_version(address: str) -> tuple[str, str]:
    """The daemon's version and revision as `ctr version` (not our bridge) reads them."""
    out = subprocess.run(["ctr", "--address", address, "version"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    server = out.split("Server:", 1)[1]
    fields = dict(line.strip().split(":", 1) for line in server.splitlines() if ":" in line)
    return fields["Version"].strip(), fields["Revision"].strip()


def host_cgroup_version() -> str:
    return "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1"


def assert_healthy_attributes(msg: _FP, version: str, revision: str) -> None:
    assert msg.health == _FP.HEALTHY, msg.health_description
    attrs = msg.attributes
    assert attrs[_ATTR].bool_val is True
    assert attrs[f"{_ATTR}.containerd_version"].string_val == version
    assert attrs[f"{_ATTR}.containerd_revision"].string_val == revision
    assert attrs[f"{_ATTR}.runtime"].string_val == RUNTIME
    assert attrs[f"{_ATTR}.cgroup_version"].string_val == host_cgroup_version()


def test_fingerprint_follows_containerd_down_and_up(daemon: Daemon, own_plugin: Plugin,  # noqa: F811
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint_module, "FINGERPRINT_EVERY", PERIOD)
    version, revision = server_version(daemon.address)
    assert version and revision

    stream = Stream(own_plugin)
    try:
        first = stream.next(within=10)  # at once: nothing to wait for but one version call
        assert_healthy_attributes(first, version, revision)
        assert first.health_description == "Healthy"

        # periodic re-sends: nothing changed, yet the same message comes again
        for _ in range(2):
            again = stream.next(within=PERIOD + 10)
            assert again == first

        daemon.stop()
        down = stream.until(_FP.UNHEALTHY, within=PERIOD + 30)
        assert "not reachable" in down.health_description
        assert daemon.address in down.health_description
        assert not down.attributes
        # the plugin did not crash: it answers other RPCs and the same stream goes on
        own_plugin.driver.Capabilities(driver_pb2.CapabilitiesRequest(), timeout=10)
        still_down = stream.next(within=PERIOD + 10)
        assert still_down.health == _FP.UNHEALTHY

        daemon.start()
        up = stream.until(_FP.HEALTHY, within=60)  # the client reconnects with backoff
        assert_healthy_attributes(up, *server_version(daemon.address))
        assert stream.ended is None  # one stream all along
    finally:
        stream.close()
    assert isinstance(stream.ended, grpc.RpcError) and stream.ended.code() == grpc.StatusCode.CANCELLED
