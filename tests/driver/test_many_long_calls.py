"""Hundreds of long-lived calls held open at once, as a busy Nomad client holds them:
a WaitTask and a TaskStats stream per task, plus Fingerprint and TaskEvents streams.
While they are all open on the server, unary calls still get answers, a new task can
still start, exec and exit, and every WaitTask then returns its own task's exit code.
"""

from __future__ import annotations

import pytest
from driverkit import Plugin, task_config

from nomad_ctr._pb import driver_pb2

pytestmark = pytest.mark.driver

TASKS = 4
CALLS_PER_TASK = 75  # 4 x 75 WaitTask + 4 x 75 TaskStats = 600 calls held open
DEADLINE_S = 120


def test_hundreds_of_open_calls_do_not_starve_others(plugin: Plugin, alloc, images) -> None:
    allocs = [alloc(f"t{i}") for i in range(TASKS)]
    tasks = []
    for i, a in enumerate(allocs):
        script = f"trap 'exit {20 + i}' USR1; echo ready; while true; do sleep 0.1; done"
        task = a.task(task_config(image=images.plain, command="sh", args=["-c", script]))
        plugin.start(task)
        a.stdout.wait_for("ready")
        tasks.append(task)

    d = plugin.driver
    fingerprint = d.Fingerprint(driver_pb2.FingerprintRequest(), timeout=DEADLINE_S)
    events = d.TaskEvents(driver_pb2.TaskEventsRequest(), timeout=DEADLINE_S)
    waits = [(t, d.WaitTask.future(driver_pb2.WaitTaskRequest(task_id=t.id), timeout=DEADLINE_S))
             for t in tasks for _ in range(CALLS_PER_TASK)]
    stats = [(t, d.TaskStats(driver_pb2.TaskStatsRequest(task_id=t.id, collection_interval={"seconds": 30}),
                             timeout=DEADLINE_S))
             for t in tasks for _ in range(CALLS_PER_TASK)]
    try:
        # each stream's first sample proves its handler runs on the server now, not queued
        for t, s in stats:
            first = next(s)
            assert first.stats.id == t.id and first.stats.agg_resource_usage.memory.rss > 0
        assert next(fingerprint).health == driver_pb2.FingerprintResponse.HEALTHY
        assert not any(f.done() for _, f in waits)  # all still blocked in the server

        # with all of that open: unary calls, and a whole new task's life
        for t in tasks:
            status = d.InspectTask(driver_pb2.InspectTaskRequest(task_id=t.id), timeout=10).task
            assert status.state == driver_pb2.RUNNING
        d.Capabilities(driver_pb2.CapabilitiesRequest(), timeout=10)
        extra_alloc = alloc("extra")
        extra = extra_alloc.task(task_config(image=images.plain, command="sh",
                                             args=["-c", "echo ready; exec sleep 600"]))
        plugin.start(extra)
        extra_alloc.stdout.wait_for("ready")
        out = d.ExecTask(driver_pb2.ExecTaskRequest(task_id=extra.id, command=["echo", "served"],
                                                    timeout={"seconds": 30}), timeout=60)
        assert (out.stdout, out.result.exit_code) == (b"served\n", 0)
        d.StopTask(driver_pb2.StopTaskRequest(task_id=extra.id, timeout={"seconds": 5}, signal="SIGKILL"),
                   timeout=60)
        assert plugin.wait(extra.id, timeout=60).result.signal == 9

        for t in tasks:
            d.SignalTask(driver_pb2.SignalTaskRequest(task_id=t.id, signal="SIGUSR1"), timeout=10)
        for t, f in waits:
            resp = f.result(timeout=DEADLINE_S)
            assert resp.result.exit_code == 20 + tasks.index(t) and resp.err == ""
        for t, s in stats:  # each stream ends by itself (OK) once its task exited
            assert all(m.stats.id == t.id for m in s)
    finally:
        for call in (fingerprint, events, *(s for _, s in stats)):
            call.cancel()
        for _, f in waits:
            f.cancel()
