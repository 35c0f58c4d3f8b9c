"""StartTask / WaitTask / StopTask / DestroyTask / InspectTask on real containerd."""

from __future__ import annotations

import threading

import grpc
import pytest
from driverkit import Plugin, status_code, task_config

from nomad_ctr import Client, errors
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.state import decode_state

pytestmark = pytest.mark.driver


def sh(image: str, script: str, **extra) -> bytes:
    return task_config(image=image, command="sh", args=["-c", script], **extra)


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_codes_and_stdout(plugin: Plugin, alloc, images, code: int) -> None:
    a = alloc()
    task = a.task(sh(images.plain, f"echo out-$NOMAD_TASK_NAME; echo err >&2; exit {code}"))
    handle = plugin.start(task)
    assert handle.version >= 1 and handle.config.id == task.id
    state = decode_state(handle.driver_state)
    assert state.task_id == task.id and state.namespace == plugin.namespace
    resp = plugin.wait(task.id)
    assert resp.err == ""
    assert resp.result.exit_code == code
    assert resp.result.signal == 0 and not resp.result.oom_killed
    assert "out-web" in a.stdout.wait_for("out-web")
    assert "err" in a.stderr.wait_for("err")
    # an exited, not destroyed task answers at once, with the same result
    assert plugin.wait(task.id, timeout=5).result.exit_code == code
    inspect = plugin.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id))
    assert inspect.task.state == driver_pb2.EXITED
    assert inspect.task.result.exit_code == code
    assert inspect.task.completed_at.seconds >= inspect.task.started_at.seconds > 0
    plugin.destroy(task.id)


def test_concurrent_waits_same_result(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    task = a.task(sh(images.plain, "sleep 300; exit 7"))
    plugin.start(task)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(plugin.wait(task.id).result.exit_code))
               for _ in range(5)]
    for t in threads:
        t.start()
    inspect = plugin.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id))
    assert inspect.task.state == driver_pb2.RUNNING
    assert inspect.task.completed_at.seconds == -62135596800
    plugin.driver.StopTask(driver_pb2.StopTaskRequest(task_id=task.id, signal="SIGKILL"))
    for t in threads:
        t.join(30)
    assert results == [137] * 5


def test_wait_cancellation_releases_the_call(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    task = a.task(sh(images.plain, "sleep 300"))
    plugin.start(task)
    with pytest.raises(grpc.RpcError) as exc:
        plugin.wait(task.id, timeout=1.0)
    assert status_code(exc) == grpc.StatusCode.DEADLINE_EXCEEDED
    # the service is still fine
    plugin.driver.StopTask(driver_pb2.StopTaskRequest(task_id=task.id, signal="SIGKILL"))
    assert plugin.wait(task.id).result.exit_code == 137


def test_stop_honours_kill_signal(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    script = "trap 'echo got-USR1; exit 3' USR1; echo ready; while true; do sleep 0.1; done"
    task = a.task(sh(images.plain, script))
    plugin.start(task)
    a.stdout.wait_for("ready")
    plugin.driver.StopTask(driver_pb2.StopTaskRequest(
        task_id=task.id, signal="SIGUSR1", timeout={"seconds": 20}))
    resp = plugin.wait(task.id)
    assert resp.result.exit_code == 3
    assert "got-USR1" in a.stdout.wait_for("got-USR1")


def test_stop_escalates_to_sigkill(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    task = a.task(sh(images.plain, "trap 'echo ignored' TERM; echo ready; while true; do sleep 0.1; done"))
    plugin.start(task)
    a.stdout.wait_for("ready")
    plugin.driver.StopTask(driver_pb2.StopTaskRequest(task_id=task.id, timeout={"seconds": 1}))
    resp = plugin.wait(task.id)
    assert resp.result.exit_code == 137
    assert resp.result.signal == 9
    assert resp.result.oom_killed is False  # the escalation's SIGKILL is no OOM kill
    assert "ignored" in a.stdout.wait_for("ignored")


def test_unknown_task_ids(plugin: Plugin) -> None:
    for call, req in (
        (plugin.driver.StopTask, driver_pb2.StopTaskRequest(task_id="nope")),
        (plugin.driver.WaitTask, driver_pb2.WaitTaskRequest(task_id="nope")),
        (plugin.driver.InspectTask, driver_pb2.InspectTaskRequest(task_id="nope")),
        (plugin.driver.SignalTask, driver_pb2.SignalTaskRequest(task_id="nope", signal="SIGHUP")),
    ):
        with pytest.raises(grpc.RpcError) as exc:
            call(req, timeout=10)
        assert status_code(exc) == grpc.StatusCode.NOT_FOUND
        assert exc.value.details() == "task not found for given id"
    # DestroyTask is idempotent
    plugin.destroy("nope")


def test_duplicate_task_id_rejected(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    task = a.task(sh(images.plain, "sleep 300"))
    plugin.start(task)
    with pytest.raises(grpc.RpcError) as exc:
        plugin.start(task)
    assert status_code(exc) == grpc.StatusCode.FAILED_PRECONDITION
    assert "already started" in exc.value.details()
    plugin.destroy(task.id)


def test_destroy_removes_everything(plugin: Plugin, alloc, images, ns_client: Client, stack) -> None:
    import subprocess

    a = alloc()
    task = a.task(sh(images.plain, "sleep 300"))
    handle = plugin.start(task)
    cid = decode_state(handle.driver_state).container_id
    assert ns_client.containers.get(cid).labels["com.hashicorp.nomad.task_id"] == task.id
    with pytest.raises(grpc.RpcError) as exc:
        plugin.driver.DestroyTask(driver_pb2.DestroyTaskRequest(task_id=task.id, force=False))
    assert status_code(exc) == grpc.StatusCode.FAILED_PRECONDITION
    plugin.destroy(task.id)
    plugin.destroy(task.id)  # idempotent
    with pytest.raises(errors.ContainerNotFound):
        ns_client.containers.get(cid)
    ctr = ["ctr", "--address", stack.containerd_address, "-n", plugin.namespace]
    assert cid not in subprocess.run([*ctr, "containers", "ls", "-q"], capture_output=True, text=True, check=False).stdout
    assert cid not in subprocess.run([*ctr, "tasks", "ls"], capture_output=True, text=True, check=False).stdout
    assert cid not in subprocess.run([*ctr, "snapshots", "ls"], capture_output=True, text=True, check=False).stdout
    assert not (a.alloc_dir / a.task_name / "containerd-driver-etc").exists()
    with pytest.raises(grpc.RpcError) as exc:
        plugin.wait(task.id, timeout=5)
    assert status_code(exc) == grpc.StatusCode.NOT_FOUND


def test_leftover_container_is_replaced(plugin: Plugin, alloc, images, ns_client: Client) -> None:
    a = alloc()
    first = a.task(sh(images.plain, "exit 0"))
    cid = decode_state(plugin.start(first).driver_state).container_id
    plugin.wait(first.id)
    # Nomad restarts the task (new id) without a DestroyTask: the old container goes
    second = a.task(sh(images.plain, "echo second; exit 5"))
    handle = plugin.start(second)
    assert decode_state(handle.driver_state).container_id == cid
    assert plugin.wait(second.id).result.exit_code == 5
    # a container left behind by a crashed plugin (untracked) is removed too
    plugin.service.store.remove(second.id)
    third = a.task(sh(images.plain, "exit 6"))
    plugin.start(third)
    assert plugin.wait(third.id).result.exit_code == 6


def test_out_of_band_deletion(plugin: Plugin, alloc, images, ns_client: Client) -> None:
    a = alloc()
    task = a.task(sh(images.plain, "sleep 300"))
    cid = decode_state(plugin.start(task).driver_state).container_id
    ns_client.containers.get(cid).delete(force=True)  # behind the driver's back
    resp = plugin.wait(task.id, timeout=30)
    assert resp.result.exit_code == 137 or resp.err
    plugin.destroy(task.id)  # still succeeds
    with pytest.raises(grpc.RpcError) as exc:
        plugin.wait(task.id, timeout=5)
    assert status_code(exc) == grpc.StatusCode.NOT_FOUND
