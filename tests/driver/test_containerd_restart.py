"""A containerd restart is not an exit: WaitTask keeps waiting, the event thread
subscribes again and reconciles, and a task that exited meanwhile reports its real
exit code. Runs a containerd of its own so the shared test daemon is never stopped."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from driverkit import Plugin, start_plugin, task_config

from nomad_ctr import Client, errors
from nomad_ctr._pb import driver_pb2

pytestmark = pytest.mark.driver

CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{state}/c.sock"
[ttrpc]
  address = "{state}/c.sock.ttrpc"
[debug]
  address = "{state}/d.sock"
[metrics]
  address = ""
"""


class Daemon:
    def __init__(self, base: str) -> None:
        self.root = Path(f"/var/lib/{base}")
        self.state = Path(f"/run/{base}")
        self.address = str(self.state / "c.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.state / "containerd.toml"
        config.write_text(CONFIG.format(root=self.root, state=self.state))
        with open(self.state / "containerd.log", "ab") as log:
            self.proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with Client(address=self.address, timeout=2) as c:
                    if c.is_serving():
                        return
            except errors.Unavailable:
                pass
            time.sleep(0.1)
        raise RuntimeError("containerd did not come up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.proc = None

    def remove(self) -> None:
        for path in (self.state, self.root):
            mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                      if line.split()[1].startswith(str(path))]
            for mount in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", mount], check=False)
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(stack) -> Iterator[Daemon]:
    if shutil.which("containerd") is None:
        pytest.skip("no containerd binary")
    d = Daemon(f"nomad-ctr-drvtest-{uuid.uuid4().hex[:8]}")
    d.start()
    try:
        yield d
    finally:
        try:
            with Client(address=d.address, namespace="drv", timeout=10) as c:
                for container in c.containers.list():
                    container.delete(force=True)
        except errors.ContainerdError:
            pass
        d.stop()
        d.remove()


@pytest.fixture
def own_plugin(daemon: Daemon, tmp_path: Path) -> Iterator[Plugin]:
    p = start_plugin(tmp_path, "drv", daemon.address)
    try:
        yield p
    finally:
        p.destroy_all_and_close()


def _background_wait(plugin: Plugin, task_id: str) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["resp"] = plugin.wait(task_id, timeout=120)
        except grpc.RpcError as exc:
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_restart_is_not_an_exit(daemon: Daemon, own_plugin: Plugin, alloc, images) -> None:
    a = alloc()
    script = "trap 'echo bye; exit 9' TERM; echo ready; while true; do sleep 0.1; done"
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", script]))
    own_plugin.start(task)
    a.stdout.wait_for("ready")
    waiter, out = _background_wait(own_plugin, task.id)
    daemon.stop()
    time.sleep(2)
    assert waiter.is_alive() and not out, out  # no exit reported while containerd is away
    daemon.start()
    time.sleep(2)
    assert waiter.is_alive() and not out, out
    deadline = time.monotonic() + 30
    while True:  # the client reconnects with backoff
        try:
            own_plugin.driver.StopTask(driver_pb2.StopTaskRequest(task_id=task.id, timeout={"seconds": 10}))
            break
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    waiter.join(30)
    assert out["resp"].result.exit_code == 9
    a.stdout.wait_for("bye")


def test_exit_while_containerd_is_down(daemon: Daemon, own_plugin: Plugin, alloc, images) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", "echo ready; sleep 2; exit 7"]))
    own_plugin.start(task)
    a.stdout.wait_for("ready")
    waiter, out = _background_wait(own_plugin, task.id)
    daemon.stop()
    time.sleep(4)  # the task exits meanwhile
    assert not out, out
    daemon.start()
    waiter.join(60)
    assert not waiter.is_alive()
    assert out["resp"].result.exit_code == 7
    assert out["resp"].err == ""
