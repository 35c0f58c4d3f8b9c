"""TaskStats streams: the agent's stats_interval wins over Nomad's collection_interval,
and a sample that fails (containerd away past the call timeout) does not end the stream:
samples resume once containerd is back. Runs the outage on a containerd of its own. Every wait has a deadline.
"""

from __future__ import annotations

import queue
from pathlib import Path

import grpc
import pytest
from driverkit import Alloc, Plugin, StreamReader, start_plugin, task_config
from test_containerd_restart import Daemon, daemon, own_plugin  # noqa: F401 - fixtures reused

from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver import connection

pytestmark = pytest.mark.driver


def stats_stream(plugin: Plugin, task_id: str, collection_ms: int) -> StreamReader:
    return StreamReader(plugin.driver.TaskStats(
        driver_pb2.TaskStatsRequest(task_id=task_id, collection_interval={"nanos": collection_ms * 1_000_000}),
        timeout=300,
    ))


def seconds(sample: driver_pb2.TaskStatsResponse) -> float:
    ts = sample.stats.timestamp
    return ts.seconds + ts.nanos / 1e9


def running(plugin: Plugin, a: Alloc, image: str) -> driver_pb2.TaskConfig:
    task = a.task(task_config(image=image, command="sh", args=["-c", "echo ready; exec sleep 600"]))
    plugin.start(task)
    a.stdout.wait_for("ready")
    return task


def test_agent_stats_interval_overrides_collection_interval(stack, namespace: str, tmp_path: Path,
                                                            alloc, images) -> None:
    plugin = start_plugin(tmp_path, namespace, stack.containerd_address, stats_interval="2s")
    try:
        task = running(plugin, alloc(), images.plain)
        stream = stats_stream(plugin, task.id, collection_ms=100)  # Nomad asks for 100 ms
        try:
            stamps = [seconds(stream.next(within=30)) for _ in range(3)]
        finally:
            stream.close()
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        # the stream waits the whole interval between samples: a floor, not a speed
        assert all(gap >= 1.9 for gap in gaps), gaps
        plugin.destroy(task.id)
    finally:
        plugin.close()


@pytest.fixture
def short_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls to a containerd that is away fail after 1 s instead of 10 (the plugin's
    client is made on first use, after this)."""
    monkeypatch.setattr(connection, "CALL_TIMEOUT", 1.0)


def test_failed_samples_do_not_end_the_stream(short_calls: None, daemon: Daemon,  # noqa: F811
                                              own_plugin: Plugin, alloc, images) -> None:  # noqa: F811
    task = running(own_plugin, alloc(), images.plain)
    stream = stats_stream(own_plugin, task.id, collection_ms=200)
    try:
        before = stream.next(within=30)
        assert before.stats.agg_resource_usage.memory.rss > 0

        daemon.stop()  # every sample now fails; the task itself lives on in its shim
        stream.drain()
        with pytest.raises(queue.Empty):  # samples fail after the 1 s call timeout: none sent
            stream.items.get(timeout=3.5)
        assert stream.ended is None
        daemon.start()
        stream.drain()  # samples that raced the stop
        after = stream.next(within=60)  # the client reconnects with backoff
        assert seconds(after) > seconds(before)
        assert after.stats.agg_resource_usage.memory.rss > 0
        assert stream.ended is None  # one stream all along
    finally:
        stream.close()
    assert isinstance(stream.ended, grpc.RpcError) and stream.ended.code() == grpc.StatusCode.CANCELLED
