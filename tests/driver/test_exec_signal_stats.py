"""SignalTask, ExecTask, ExecTaskStreaming, TaskStats, Fingerprint and TaskEvents."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from driverkit import Plugin, status_code, task_config, task_events

from nomad_ctr._pb import driver_pb2

pytestmark = pytest.mark.driver

Req = driver_pb2.ExecTaskStreamingRequest


def running_task(plugin: Plugin, alloc, image: str, script: str = "echo ready; while true; do sleep 0.2; done"):
    a = alloc()
    task = a.task(task_config(image=image, command="sh", args=["-c", script]))
    plugin.start(task)
    a.stdout.wait_for("ready")
    return a, task


def test_signal_task(plugin: Plugin, alloc, images) -> None:
    a, task = running_task(
        plugin, alloc, images.plain,
        "trap 'echo got-HUP' HUP; echo ready; while true; do sleep 0.1; done")
    plugin.driver.SignalTask(driver_pb2.SignalTaskRequest(task_id=task.id, signal="SIGHUP"))
    a.stdout.wait_for("got-HUP")
    with pytest.raises(grpc.RpcError) as exc:
        plugin.driver.SignalTask(driver_pb2.SignalTaskRequest(task_id=task.id, signal="SIGBOGUS"))
    assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert "SIGBOGUS" in exc.value.details()
    # still running and still serving
    inspect = plugin.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id))
    assert inspect.task.state == driver_pb2.RUNNING


def test_exec_task(plugin: Plugin, alloc, images) -> None:
    _, task = running_task(plugin, alloc, images.plain)
    resp = plugin.driver.ExecTask(driver_pb2.ExecTaskRequest(
        task_id=task.id, command=["sh", "-c", "echo hi $NOMAD_TASK_NAME; echo oops >&2; exit 3"],
        timeout={"seconds": 30}))
    assert resp.stdout == b"hi web\n"
    assert resp.stderr == b"oops\n"
    assert resp.result.exit_code == 3
    with pytest.raises(grpc.RpcError) as exc:
        plugin.driver.ExecTask(driver_pb2.ExecTaskRequest(
            task_id=task.id, command=["sleep", "30"], timeout={"seconds": 1}))
    assert status_code(exc) == grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(grpc.RpcError) as exc:
        plugin.driver.ExecTask(driver_pb2.ExecTaskRequest(task_id=task.id, command=["/no/such/binary"]))
    assert status_code(exc) == grpc.StatusCode.FAILED_PRECONDITION


def _exec_stream(plugin: Plugin, setup: Req.Setup, inputs: list[Req], hold: threading.Event | None = None):
    def requests():
        yield Req(setup=setup)
        yield from inputs
        # Nomad never half-closes: keep the stream open until the call ends
        (hold or threading.Event()).wait(30)

    out, err, result = bytearray(), bytearray(), None
    closes = set()
    for resp in plugin.driver.ExecTaskStreaming(requests(), timeout=60):
        if resp.HasField("stdout"):
            out += resp.stdout.data
            if resp.stdout.close:
                closes.add("stdout")
        if resp.HasField("stderr"):
            err += resp.stderr.data
            if resp.stderr.close:
                closes.add("stderr")
        if resp.exited:
            result = resp.result
    if hold:
        hold.set()
    return bytes(out), bytes(err), result, closes


def test_exec_streaming_output_exit_code_and_stdin(plugin: Plugin, alloc, images) -> None:
    _, task = running_task(plugin, alloc, images.plain)
    out, err, result, closes = _exec_stream(
        plugin, Req.Setup(task_id=task.id, command=["sh", "-c", "echo out; echo err >&2; exit 43"]), [])
    assert (out, err, result.exit_code) == (b"out\n", b"err\n", 43)
    assert closes == {"stdout", "stderr"}
    inputs = [Req(), Req(stdin=driver_pb2.ExecTaskStreamingIOOperation(data=b"hello\nworld\n")),
              Req(stdin=driver_pb2.ExecTaskStreamingIOOperation(close=True))]
    out, _, result, _ = _exec_stream(plugin, Req.Setup(task_id=task.id, command=["cat"]), inputs)
    assert out == b"hello\nworld\n" and result.exit_code == 0


def test_exec_streaming_tty_resize(plugin: Plugin, alloc, images) -> None:
    _, task = running_task(plugin, alloc, images.plain)
    inputs = [Req(tty_size=Req.TerminalSize(height=33, width=101)),
              Req(stdin=driver_pb2.ExecTaskStreamingIOOperation(data=b"stty size; exit 0\n"))]
    out, _, result, _ = _exec_stream(plugin, Req.Setup(task_id=task.id, command=["sh"], tty=True), inputs)
    assert b"33 101" in out
    assert result.exit_code == 0


def test_exec_streaming_first_message_must_be_setup(plugin: Plugin) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        list(plugin.driver.ExecTaskStreaming(iter([Req(tty_size=Req.TerminalSize(height=1, width=1))]), timeout=10))
    assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_exec_streaming_client_gone_kills_process(plugin: Plugin, alloc, images) -> None:
    _, task = running_task(plugin, alloc, images.plain)
    hold = threading.Event()

    def requests():
        yield Req(setup=Req.Setup(task_id=task.id, command=["sh", "-c", "echo started; exec sleep 1000"]))
        hold.wait(30)

    call = plugin.driver.ExecTaskStreaming(requests(), timeout=60)
    first = next(call)
    assert first.stdout.data == b"started\n"
    call.cancel()
    hold.set()
    # the exec'd sleep goes away
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ps = plugin.driver.ExecTask(driver_pb2.ExecTaskRequest(task_id=task.id, command=["ps"]))
        if b"sleep 1000" not in ps.stdout:
            break
        time.sleep(0.2)
    assert b"sleep 1000" not in ps.stdout


def test_task_stats(plugin: Plugin, alloc, images) -> None:
    _, task = running_task(plugin, alloc, images.plain, "echo ready; while true; do :; done")
    stream = plugin.driver.TaskStats(driver_pb2.TaskStatsRequest(
        task_id=task.id, collection_interval={"nanos": 300_000_000}), timeout=60)
    samples = [next(stream) for _ in range(4)]
    stream.cancel()
    for s in samples:
        assert s.stats.timestamp.seconds > 0
        assert s.stats.HasField("agg_resource_usage")
        mem = s.stats.agg_resource_usage.memory
        assert driver_pb2.MemoryUsage.RSS in mem.measured_fields
        assert mem.rss > 0 and mem.usage >= mem.rss
    cpu = samples[-1].stats.agg_resource_usage.cpu
    assert driver_pb2.CPUUsage.PERCENT in cpu.measured_fields
    # a busy loop on one core: clearly above idle, at most a core and a bit
    assert 20.0 < cpu.percent < 130.0
    assert cpu.total_ticks > 0


def test_task_stats_end_when_task_exits(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", "sleep 1"]))
    plugin.start(task)
    stream = plugin.driver.TaskStats(driver_pb2.TaskStatsRequest(
        task_id=task.id, collection_interval={"nanos": 200_000_000}), timeout=30)
    count = sum(1 for _ in stream)  # ends by itself, with OK
    assert count >= 1


def test_fingerprint_and_task_events(plugin: Plugin, alloc, images, ns_client) -> None:
    fp = plugin.driver.Fingerprint(driver_pb2.FingerprintRequest(), timeout=60)
    first = next(fp)
    fp.cancel()
    assert first.health == driver_pb2.FingerprintResponse.HEALTHY
    assert first.health_description == "Healthy"
    attrs = first.attributes
    assert attrs["driver.containerd-driver"].bool_val is True
    assert attrs["driver.containerd-driver.containerd_version"].string_val
    assert attrs["driver.containerd-driver.runtime"].string_val == "io.containerd.runc.v2"
    assert attrs["driver.containerd-driver.namespace"].string_val == plugin.namespace
    assert attrs["driver.containerd-driver.cgroup_version"].string_val in ("v1", "v2")

    events = task_events(plugin)
    # :latest tags are always pulled, so this start pulls and reports it
    a = alloc()
    task = a.task(task_config(image=images.hello, command="true"))
    plugin.start(task)
    plugin.wait(task.id)
    events.close()
    got = events.received()
    messages = [e.message for e in got]
    assert any(m.startswith("Pulling image") for m in messages), messages
    assert any(m.startswith("Pulled image") for m in messages), messages
    for e in got:
        assert (e.alloc_id, e.task_name, e.task_id) == (task.alloc_id, "web", task.id)
        assert e.timestamp.seconds > 0


def test_fingerprint_unhealthy_when_containerd_missing(stack, namespace, tmp_path) -> None:
    from driverkit import start_plugin

    p = start_plugin(tmp_path, namespace, "/run/nomad-ctr-test/no-such.sock")
    try:
        fp = p.driver.Fingerprint(driver_pb2.FingerprintRequest(), timeout=30)
        first = next(fp)
        fp.cancel()
        assert first.health == driver_pb2.FingerprintResponse.UNHEALTHY
        assert "no-such.sock" in first.health_description
    finally:
        p.close()
