"""RecoverTask: a new DriverService (a plugin restart) finds tasks from the handle alone."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from driverkit import Plugin, start_plugin, status_code, task_config

from nomad_ctr import Client, errors
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.state import DriverState, decode_state, encode_state

pytestmark = pytest.mark.driver


def restart(old: Plugin, stack, tmp_path: Path) -> Plugin:
    """The plugin process dies (its service is dropped without stopping tasks) and a
    new one is configured, as Nomad does after a plugin crash."""
    old.close()
    return start_plugin(tmp_path, old.namespace, stack.containerd_address)


def as_stored(handle: driver_pb2.TaskHandle) -> driver_pb2.TaskHandle:
    """What Nomad gives back after an agent restart: no raw driver config."""
    stored = driver_pb2.TaskHandle()
    stored.CopyFrom(handle)
    stored.config.msgpack_driver_config = b""
    return stored


def recover(plugin: Plugin, handle: driver_pb2.TaskHandle) -> None:
    plugin.driver.RecoverTask(driver_pb2.RecoverTaskRequest(handle=handle), timeout=30)


def test_recover_running_task_then_stop(plugin: Plugin, alloc, images, stack, tmp_path) -> None:
    a = alloc()
    script = "trap 'echo bye; exit 9' TERM; echo ready; while true; do sleep 0.1; done"
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", script]))
    handle = plugin.start(task)
    a.stdout.wait_for("ready")
    new = restart(plugin, stack, tmp_path)
    try:
        recover(new, as_stored(handle))
        recover(new, as_stored(handle))  # idempotent
        inspect = new.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id))
        assert inspect.task.state == driver_pb2.RUNNING
        # output still reaches the FIFO: the shim writes it, not the plugin
        new.driver.SignalTask(driver_pb2.SignalTaskRequest(task_id=task.id, signal="SIGTERM"))
        resp = new.wait(task.id)
        assert resp.result.exit_code == 9 and resp.err == ""
        a.stdout.wait_for("bye")
        new.destroy(task.id)
    finally:
        new.close()


def test_exit_while_no_plugin_runs_keeps_exit_code(plugin: Plugin, alloc, images, stack, tmp_path) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", "echo ready; sleep 2; exit 7"]))
    handle = plugin.start(task)
    a.stdout.wait_for("ready")
    plugin.close()
    time.sleep(3.5)  # the task exits while no plugin is there
    new = start_plugin(tmp_path, plugin.namespace, stack.containerd_address)
    try:
        recover(new, as_stored(handle))
        resp = new.wait(task.id, timeout=10)
        assert resp.result.exit_code == 7
        inspect = new.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id))
        assert inspect.task.state == driver_pb2.EXITED  # reported, never restarted
        new.destroy(task.id)
    finally:
        new.close()


def test_recover_missing_container_fails(plugin: Plugin, alloc, images, ns_client: Client) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sleep", args=["300"]))
    handle = plugin.start(task)
    plugin.destroy(task.id)
    with pytest.raises(grpc.RpcError) as exc:
        recover(plugin, as_stored(handle))
    assert status_code(exc) == grpc.StatusCode.FAILED_PRECONDITION
    assert "no longer exists" in exc.value.details()


def test_recover_rejects_bad_driver_state(plugin: Plugin) -> None:
    bad = [b"", b"\xc1garbage", encode_state(DriverState("t", "c", "ns"))[:-3]]
    for blob in bad:
        handle = driver_pb2.TaskHandle(version=1, config=driver_pb2.TaskConfig(id="t"), driver_state=blob)
        with pytest.raises(grpc.RpcError) as exc:
            recover(plugin, handle)
        assert status_code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    state = decode_state(encode_state(DriverState("t", "c", "ns", started_at_ns=5)))
    assert state.started_at_ns == 5


def test_destroy_after_failed_recovery_removes_the_container(plugin: Plugin, alloc, images, stack, tmp_path,
                                                             ns_client: Client) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sleep", args=["300"]))
    handle = plugin.start(task)
    cid = decode_state(handle.driver_state).container_id
    new = restart(plugin, stack, tmp_path)
    try:
        # Nomad could not recover the task (say containerd was briefly away) and destroys it
        new.destroy(task.id)
        with pytest.raises(errors.ContainerNotFound):
            ns_client.containers.get(cid)
    finally:
        new.close()
