"""wait() while containerd goes away: errors.Unavailable, and a re-wait after the restart.

Uses a containerd of its own (own root, state and socket) so the shared test daemon is
never stopped under other tests.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nomad_ctr import Client, ContainerSpec, TaskState, errors

pytestmark = pytest.mark.integration

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
        self.config = self.state / "containerd.toml"
        self.log = self.state / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(CONFIG.format(root=self.root, state=self.state))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["containerd", "--config", str(self.config)],
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited: {self.log.read_text()[-2000:]}")
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


def _retry_unavailable(fn, limit: float = 30.0):
    deadline = time.monotonic() + limit
    while True:
        try:
            return fn()
        except errors.Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    if shutil.which("containerd") is None:
        pytest.skip("no containerd binary")
    d = Daemon(f"nomad-ctr-apitest-{uuid.uuid4().hex[:8]}")
    d.start()
    try:
        yield d
    finally:
        d.stop()
        d.remove()


def test_wait_raises_unavailable_then_rewait(daemon: Daemon, images, cid: str) -> None:
    client = Client(address=daemon.address, namespace="restart", timeout=30)
    c = None
    try:
        client.images.pull(images.plain, timeout=120)
        c = client.containers.create(cid, images.plain, spec=ContainerSpec(args=["sleep", "600"]))
        c.start()
        outcome: dict[str, BaseException | object] = {}

        def wait() -> None:
            try:
                outcome["result"] = c.wait()
            except BaseException as exc:  # noqa: BLE001 - asserted below
                outcome["error"] = exc

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        time.sleep(0.5)  # let the Wait stream be established
        daemon.stop()
        waiter.join(30)
        assert not waiter.is_alive(), "wait() did not return when containerd went away"
        assert isinstance(outcome.get("error"), errors.Unavailable), outcome

        daemon.start()
        # The task outlived the daemon (the shim keeps it); the same client re-waits once
        # its connection is back (gRPC reconnects with backoff, so retry on Unavailable).
        assert _retry_unavailable(c.status).state is TaskState.RUNNING
        c.kill("SIGKILL")
        assert c.wait(timeout=30).exit_code == 137
    finally:
        if c is not None:
            try:
                c.delete(force=True)
            except errors.ContainerdError:
                pass
        for image in client.images.list():
            client.images.remove(image.name, sync=True)
        client.close()
