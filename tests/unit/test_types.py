"""Parsing the bridge's JSON shapes into typed results."""

from __future__ import annotations

import signal
from datetime import datetime, timezone

import pytest

from nomad_ctr import (
    Event,
    ExitStatus,
    Image,
    LayerStatus,
    Metrics,
    PullProgress,
    TaskState,
    TaskStatus,
)
from nomad_ctr.types import ContainerInfo, parse_time

pytestmark = pytest.mark.unit


def test_parse_time_nanoseconds_and_zones() -> None:
    t = parse_time("2026-12-03T19:20:01.123456789Z")
    assert t == datetime(2026, 12, 3, 19, 20, 1, 123456, tzinfo=timezone.utc)
    assert parse_time("2026-12-03T20:20:01+01:00") == datetime(2026, 12, 3, 19, 20, 1, tzinfo=timezone.utc)
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time(None) is None and parse_time("") is None
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_image_from_json() -> None:
    img = Image.from_json({
        "name": "127.0.0.1:5000/nomad-ctr/configured:latest",
        "digest": "sha256:abc",
        "size": 1234,
        "created": "2026-12-01T00:00:00Z",
        "labels": {"k": "v"},
        "config": {
            "entrypoint": ["/bin/sh", "-c"], "cmd": ["echo configured"],
            "env": ["PATH=/bin", "GREETING=hello", "EMPTY="],
            "working_dir": "/srv/app", "user": "1000:1000",
            "exposed_ports": ["80/tcp"], "stop_signal": None,
        },
    })
    assert img.size == 1234 and img.labels == {"k": "v"}
    assert img.config.entrypoint == ("/bin/sh", "-c")
    assert img.config.cmd == ("echo configured",)
    assert img.config.env == {"PATH": "/bin", "GREETING": "hello", "EMPTY": ""}
    assert img.config.working_dir == "/srv/app" and img.config.user == "1000:1000"
    assert img.config.stop_signal == ""
    bare = Image.from_json({"name": "x", "config": {"entrypoint": None, "cmd": None}})
    assert bare.config.entrypoint is None and bare.created is None


def test_metrics_v1_and_nulls() -> None:
    m = Metrics.from_json({
        "cgroup": "v1", "timestamp": "2026-12-03T19:20:01Z",
        "cpu": {"total_ns": 5, "user_ns": 3, "system_ns": 2, "throttled_periods": 0,
                "throttled_time_ns": 0},
        "memory": {"usage": 100, "max_usage": 200, "limit": 300, "rss": 50, "cache": 10,
                   "swap": None, "oom_events": 1},
        "pids": {"current": 2, "limit": None},
    })
    assert m.cgroup == "v1" and m.cpu.total_ns == 5
    assert m.memory.oom_events == 1 and m.memory.swap is None
    assert m.pids.current == 2 and m.pids.limit is None
    empty = Metrics.from_json({})
    assert empty.memory.usage is None and empty.cpu.total_ns is None


def test_task_status_hides_exit_code_until_stopped() -> None:
    running = TaskStatus.from_json({"status": "running", "pid": 42, "exit_code": 0,
                                    "exited_at": "0001-01-01T00:00:00Z"})
    assert running.state is TaskState.RUNNING and running.exit_code is None
    assert running.exited_at is None
    stopped = TaskStatus.from_json({"status": "stopped", "pid": 42, "exit_code": 3,
                                    "exited_at": "2026-12-03T19:20:01Z"})
    assert stopped.state is TaskState.STOPPED and stopped.exit_code == 3
    assert TaskStatus.from_json({"status": "weird"}).state is TaskState.UNKNOWN


def test_exit_status_signal() -> None:
    assert ExitStatus(137, None).signal is signal.SIGKILL
    assert ExitStatus(143, None).signal is signal.SIGTERM
    assert ExitStatus(1, None).signal is None and ExitStatus(0, None).signal is None
    es = ExitStatus.from_json({"exit_code": 137, "exited_at": "2026-12-03T19:20:01Z"}, oom_killed=True)
    assert es.oom_killed and es.exited_at is not None


def test_pull_progress_aggregation() -> None:
    p = PullProgress.from_json({
        "ref": "x",
        "layers": [
            {"ref": "l1", "status": "done", "offset": 0, "total": 100},
            {"ref": "l2", "status": "downloading", "offset": 50, "total": 200},
            {"ref": "l3", "status": "exists", "offset": 0, "total": 100},
            {"ref": "l4", "status": "waiting", "offset": 0, "total": 0},
            {"ref": "l5", "status": "new-status", "offset": 0, "total": 0},
        ],
        "done": False,
    })
    assert p.total == 400
    assert p.offset == 250  # done/exists layers count in full
    assert p.layers_done == 2
    assert p.fraction == pytest.approx(0.625)
    assert p.layers[4].status is LayerStatus.WAITING
    assert PullProgress.from_json({"ref": "x", "done": True}).fraction == 1.0
    assert PullProgress.from_json({}).fraction == 0.0


def test_event_and_container_info() -> None:
    e = Event.from_json({"topic": "/tasks/exit", "namespace": "ns", "timestamp": "2026-12-03T19:20:01Z",
                         "container_id": "c1", "id": "c1", "pid": 7, "exit_code": 3,
                         "exited_at": "2026-12-03T19:20:01.5Z"})
    assert (e.topic, e.container_id, e.exit_code, e.pid) == ("/tasks/exit", "c1", 3, 7)
    oom = Event.from_json({"topic": "/tasks/oom", "container_id": "c1"})
    assert oom.exit_code is None and oom.exited_at is None
    info = ContainerInfo.from_json({"id": "c1", "image": "i", "runtime": "io.containerd.runc.v2",
                                    "snapshotter": "overlayfs", "snapshot_key": "c1",
                                    "labels": None, "created_at": "2026-12-03T19:20:01Z"})
    assert info.labels == {} and info.created_at is not None
