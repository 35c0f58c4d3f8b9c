"""Task values that name host paths, checked on the host before the pull (they used to
fail only at container create or start): devices must be device nodes, an absolute
bind source must exist."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import msgpack
import pytest

from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import ConfigError, DriverConfig, parse_task_config
from nomad_ctr.driver.specbuild import NetPlan, build_spec

pytestmark = pytest.mark.unit

DRIVER = DriverConfig("io.containerd.runc.v2", bridge_subnet=ipaddress.IPv4Network("10.9.0.0/24"))


def spec_error(tmp_path: Path, **values: Any) -> str | None:
    task = driver_pb2.TaskConfig(id="a/web/1", name="web", alloc_id="a" * 36, alloc_dir=str(tmp_path))
    tc = parse_task_config(msgpack.packb({"image": "x", **values}))
    try:
        build_spec(task, tc, DRIVER, NetPlan())
    except ConfigError as exc:
        return str(exc)
    return None


def test_devices_must_be_device_nodes(tmp_path: Path) -> None:
    assert spec_error(tmp_path, devices=["/dev/null", "/dev/zero"]) is None
    assert spec_error(tmp_path, devices=["/dev/null", "/dev/nonexistent0"]) == (
        'invalid task config: devices[1]: "/dev/nonexistent0" cannot be used (No such file or directory)')
    assert spec_error(tmp_path, devices=["/dev/shm"]) == 'invalid task config: devices[0]: "/dev/shm" is not a device node'


def test_absolute_bind_source_must_exist(tmp_path: Path) -> None:
    (tmp_path / "there").write_text("x")
    assert spec_error(tmp_path, mounts=[{"target": "/a", "source": str(tmp_path / "there")}]) is None
    missing = str(tmp_path / "missing")
    assert spec_error(tmp_path, mounts=[{"target": "/a", "source": "/tmp"},
                                        {"type": "bind", "target": "/b", "source": missing}]) == (
        f'invalid task config: mounts[1].source: "{missing}" does not exist on the host')
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert "does not exist on the host" in (spec_error(tmp_path, mounts=[{"target": "/a", "source": str(tmp_path / "dangling")}]) or "")
