"""OOM kills are reported (and a plain SIGKILL is not one); many tasks at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from driverkit import Plugin, task_config

from nomad_ctr import Client
from nomad_ctr._pb import driver_pb2

pytestmark = pytest.mark.driver


def test_oom_killed(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    hog = "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", hog]), memory_mb=16)
    plugin.start(task)
    resp = plugin.wait(task.id, timeout=120)
    assert resp.result.exit_code == 137
    assert resp.result.oom_killed is True
    assert resp.result.signal == 9


def test_sigkill_is_not_oom(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    # PID 1 ignores SIGKILL from inside its namespace, so a child shell kills itself
    script = 'sh -c "kill -9 \\$\\$"; exit $?'
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", script]), memory_mb=64)
    plugin.start(task)
    resp = plugin.wait(task.id)
    assert resp.result.exit_code == 137
    assert resp.result.oom_killed is False


def test_pid_1_killed_by_sigkill_is_not_oom(plugin: Plugin, alloc, images) -> None:
    # the whole container dies of SIGKILL, under a memory limit, and still no OOM is claimed
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", "echo ready; exec sleep 600"]),
                  memory_mb=64)
    plugin.start(task)
    a.stdout.wait_for("ready")
    plugin.driver.SignalTask(driver_pb2.SignalTaskRequest(task_id=task.id, signal="SIGKILL"), timeout=10)
    resp = plugin.wait(task.id)
    assert (resp.result.exit_code, resp.result.signal, resp.result.oom_killed) == (137, 9, False)


def test_many_tasks_at_once(plugin: Plugin, alloc, images, ns_client: Client) -> None:
    allocs = [alloc(f"t{i}") for i in range(12)]
    tasks = [a.task(task_config(image=images.plain, command="sh", args=["-c", f"sleep 1; exit {i}"]))
             for i, a in enumerate(allocs)]
    with ThreadPoolExecutor(len(tasks)) as pool:
        list(pool.map(plugin.start, tasks))
        codes = list(pool.map(lambda t: plugin.wait(t.id).result.exit_code, tasks))
        assert codes == list(range(len(tasks)))
        list(pool.map(lambda t: plugin.destroy(t.id), tasks))
    ours = [c for c in ns_client.containers.list()
            if c.labels.get("com.hashicorp.nomad.alloc_id") in {a.alloc_id for a in allocs}]
    assert ours == []
    assert plugin.service.store.all() == []
