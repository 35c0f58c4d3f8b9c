"""Helpers for the in-process Driver service tests (fixtures in conftest.py).

`plugin`   a DriverService behind a real gRPC server (build_server + a unix socket),
           configured through BasePlugin.SetConfig for a fresh containerd namespace;
           `plugin.driver` is the Driver stub. Everything the namespace holds is
           removed afterwards.
`alloc`    makes Nomad-style alloc dirs with real log FIFOs drained by a thread.
Task configs are encoded like Nomad does (cty msgpack with the schema's type).
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from nomad_ctr._pb import base_pb2, base_pb2_grpc, driver_pb2, driver_pb2_grpc
from nomad_ctr.driver import cty
from nomad_ctr.driver.config_schema import driver_config_spec, task_config_spec
from nomad_ctr.driver.hclspec import implied_type
from nomad_ctr.driver.plugin import PluginServer, build_server, dial
from nomad_ctr.driver.service import DriverService

DRIVER_TYPE = implied_type(driver_config_spec())
TASK_TYPE = implied_type(task_config_spec())
RUNTIME = "io.containerd.runc.v2"


def driver_config(**values: Any) -> bytes:
    return cty.encode({"containerd_runtime": RUNTIME, **values}, DRIVER_TYPE)


def task_config(**values: Any) -> bytes:
    """Like Nomad: `any` attributes are encoded with their value's own type (§9)."""
    attrs = {
        name: cty.implied_type_of(values[name]) if ty == cty.DYNAMIC and values.get(name) is not None else ty
        for name, ty in TASK_TYPE.attr_types().items()
    }
    return cty.encode(values, cty.ObjectType.of(attrs))


class LogPipe:
    """A logmon stand-in: a FIFO read by a thread into a buffer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path, 0o600)
        self._buf = bytearray()
        self._lock = threading.Lock()
        # O_RDWR: never sees EOF when the writer closes, so a reopened FIFO keeps working
        self._fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.2)
            if ready:
                try:
                    data = os.read(self._fd, 65536)
                except BlockingIOError:
                    continue
                with self._lock:
                    self._buf += data

    def text(self) -> str:
        with self._lock:
            return self._buf.decode(errors="replace")

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.text():
                return self.text()
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in output within {timeout}s: {self.text()!r}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self._fd)


@dataclass
class Alloc:
    alloc_id: str
    alloc_dir: Path
    task_name: str
    stdout: LogPipe
    stderr: LogPipe
    counter: int = 0

    def task(self, config: bytes, *, env: dict[str, str] | None = None, memory_mb: int = 64,
             **extra: Any) -> driver_pb2.TaskConfig:
        self.counter += 1
        return driver_pb2.TaskConfig(
            id=f"{self.alloc_id}/{self.task_name}/{uuid.uuid4().hex[:8]}",
            name=self.task_name,
            alloc_id=self.alloc_id,
            job_name="job", job_id="job", task_group_name="group", namespace="default",
            alloc_dir=str(self.alloc_dir),
            stdout_path=str(self.stdout.path),
            stderr_path=str(self.stderr.path),
            env={"NOMAD_TASK_NAME": self.task_name, **(env or {})},
            resources=driver_pb2.Resources(
                allocated_resources=driver_pb2.AllocatedTaskResources(
                    cpu=driver_pb2.AllocatedCpuResources(cpu_shares=100),
                    memory=driver_pb2.AllocatedMemoryResources(memory_mb=memory_mb),
                ),
                linux_resources=driver_pb2.LinuxResources(cpu_shares=100, memory_limit_bytes=memory_mb << 20),
            ),
            msgpack_driver_config=config,
            **extra,
        )


@dataclass
class Plugin:
    service: DriverService
    server: PluginServer
    channel: grpc.Channel
    namespace: str
    driver: driver_pb2_grpc.DriverStub = field(init=False)
    base: base_pb2_grpc.BasePluginStub = field(init=False)

    def __post_init__(self) -> None:
        self.driver = driver_pb2_grpc.DriverStub(self.channel)
        self.base = base_pb2_grpc.BasePluginStub(self.channel)

    def start(self, task: driver_pb2.TaskConfig) -> driver_pb2.TaskHandle:
        return self.driver.StartTask(driver_pb2.StartTaskRequest(task=task), timeout=120).handle

    def wait(self, task_id: str, timeout: float = 60) -> driver_pb2.WaitTaskResponse:
        return self.driver.WaitTask(driver_pb2.WaitTaskRequest(task_id=task_id), timeout=timeout)

    def destroy(self, task_id: str) -> None:
        self.driver.DestroyTask(driver_pb2.DestroyTaskRequest(task_id=task_id, force=True), timeout=60)

    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.channel.close()
            self.server.stop(0.2)

    def destroy_all_and_close(self) -> None:
        """Teardown as Nomad would: DestroyTask for every tracked task (which also
        removes its network), then close. Best effort: a failed destroy is skipped."""
        for handle in [] if self.closed else self.service.store.all():
            try:
                self.destroy(handle.task_id)
            except grpc.RpcError:
                pass
        self.close()


class StreamReader:
    """A server stream (Fingerprint, TaskStats, ...) read by a thread of its own, so a
    test can wait for each message with a deadline. `ended` is None while it runs."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.items: queue.Queue[Any] = queue.Queue()
        self.ended: grpc.RpcError | str | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for msg in self.call:
                self.items.put(msg)
            self.ended = "stream ended with OK"
        except grpc.RpcError as exc:
            self.ended = exc

    def next(self, within: float) -> Any:
        try:
            return self.items.get(timeout=within)
        except queue.Empty:
            raise AssertionError(f"no message within {within}s (stream ended: {self.ended!r})") from None

    def drain(self) -> None:
        while not self.items.empty():
            self.items.get_nowait()

    def received(self) -> list[Any]:
        """Every message read so far and not yet taken, in order."""
        out = []
        while not self.items.empty():
            out.append(self.items.get_nowait())
        return out

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(10)


def task_events(plugin: Plugin, within: float = 10.0) -> StreamReader:
    """A TaskEvents stream that is listening on the server: an event sent before the
    in-process service registered the stream would be dropped, so wait (bounded) for it."""
    reader = StreamReader(plugin.driver.TaskEvents(driver_pb2.TaskEventsRequest(), timeout=300))
    end = time.monotonic() + within
    while time.monotonic() < end:
        with plugin.service.events._lock:
            if plugin.service.events._queues:
                return reader
        time.sleep(0.02)
    reader.close()
    raise AssertionError(f"the TaskEvents stream did not start listening within {within}s")


def start_plugin(tmp: Path, namespace: str, address: str, **config: Any) -> Plugin:
    service = DriverService()
    server = build_server(service)
    sock = tmp / f"plugin-{uuid.uuid4().hex[:6]}.sock"
    server.bind_unix(str(sock))
    server.start()
    plugin = Plugin(service, server, dial(str(sock)), namespace)
    plugin.base.SetConfig(
        base_pb2.SetConfigRequest(
            msgpack_config=driver_config(address=address, namespace=namespace, **config),
            nomad_config=base_pb2.NomadConfig(driver=base_pb2.NomadDriverConfig(ClientMinPort=14000, ClientMaxPort=14512)),
            plugin_api_version="v0.1.0",
        ),
        timeout=10,
    )
    return plugin


def status_code(excinfo: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return excinfo.value.code()  # type: ignore[attr-defined]


def is_fifo(path: Path) -> bool:
    return stat.S_ISFIFO(os.stat(path).st_mode)
