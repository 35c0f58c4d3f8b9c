"""go-plugin plumbing: the one gRPC server Nomad talks to (fact sheet §2-§3).

The seam for the Driver servicer:

    server = build_server(DriverService())   # or build_server(None) for no Driver yet
    path = server.bind_unix("/tmp/x/plugin.sock")
    server.start()
    ...
    server.stop()

`build_server` registers grpc.health.v1 (service "plugin" SERVING), go-plugin's
GRPCController (Shutdown -> `server.shutdown_requested` is set), GRPCStdio and
GRPCBroker stubs, BasePlugin (base.py) and, if given, the Driver servicer. It is a
sync grpc server on a large thread pool: every RPC holds a thread while it runs, and
Nomad keeps 4 streams plus ~3 long calls per task open (WaitTask may block for days).

Contract with the Driver servicer object (any of these methods are optional):
- the Driver RPCs of driver_pb2_grpc.DriverServicer, sync, `(self, request, context)`;
- `set_config(config: DriverConfig, nomad_config: NomadConfig | None, api_version: str)`
  called after every accepted SetConfig (raise ConfigError to reject the config);
- `close()` called once when the plugin exits (keep it under a second).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from nomad_ctr._pb import (
    base_pb2_grpc,
    driver_pb2_grpc,
    grpc_broker_pb2,
    grpc_broker_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2,
    grpc_stdio_pb2_grpc,
)
from nomad_ctr.driver.base import BasePluginService

__all__ = [
    "APP_PROTOCOL_VERSION",
    "CORE_PROTOCOL_VERSION",
    "HEALTH_SERVICE",
    "MAGIC_COOKIE_KEY",
    "MAGIC_COOKIE_VALUE",
    "MAX_RECEIVE_BYTES",
    "PluginServer",
    "build_server",
    "dial",
    "handshake_line",
]

MAGIC_COOKIE_KEY = "NOMAD_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255"
CORE_PROTOCOL_VERSION = 1
APP_PROTOCOL_VERSION = 2
HEALTH_SERVICE = "plugin"

# Nomad allows 2 GiB messages; no legitimate request is near 8 MiB, so a larger one is
# refused (RESOURCE_EXHAUSTED) instead of being buffered.
MAX_RECEIVE_BYTES = 8 * 1024 * 1024
MAX_SEND_BYTES = 2**31 - 1
DEFAULT_MAX_WORKERS = 1024

log = logging.getLogger("nomad_ctr.driver.plugin")


class _Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, requested: threading.Event) -> None:
        self._requested = requested

    def Shutdown(
        self, request: grpc_controller_pb2.Empty, context: grpc.ServicerContext
    ) -> grpc_controller_pb2.Empty:
        log.info("shutdown requested by the plugin host")
        self._requested.set()  # the main thread stops the server and exits
        return grpc_controller_pb2.Empty()


class _Stdio(grpc_stdio_pb2_grpc.GRPCStdioServicer):
    """We log to stderr directly, so the stream carries nothing; it stays open until the
    host cancels it or we stop (ending it early only makes the host log noise)."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping

    def StreamStdio(
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[grpc_stdio_pb2.StdioData]:
        done = threading.Event()
        context.add_callback(done.set)
        while not done.wait(0.5):
            if self._stopping.is_set() or not context.is_active():
                break
        return
        yield  # pragma: no cover - makes this a (silent) server stream


class _Broker(grpc_broker_pb2_grpc.GRPCBrokerServicer):
    """Nomad drivers broker no connections: drain the host's stream until it ends."""

    def StartStream(
        self, request_iterator: Iterator[grpc_broker_pb2.ConnInfo], context: grpc.ServicerContext
    ) -> Iterator[grpc_broker_pb2.ConnInfo]:
        try:
            for _ in request_iterator:
                pass
        except grpc.RpcError:
            pass
        return
        yield  # pragma: no cover


class PluginServer:
    """A built (not yet bound) plugin gRPC server and the objects registered on it."""

    def __init__(
        self,
        server: grpc.Server,
        base: BasePluginService,
        driver: Any | None,
        health_servicer: health.HealthServicer,
        shutdown_requested: threading.Event,
        stopping: threading.Event,
    ) -> None:
        self.server = server
        self.base = base
        self.driver = driver
        self.health = health_servicer
        self.shutdown_requested = shutdown_requested
        self._stopping = stopping
        self._socket_paths: list[str] = []

    def bind_unix(self, path: str) -> str:
        """Listen on a unix socket at `path` (before start). Returns the path."""
        if len(path.encode()) > 107:
            raise ValueError(f"unix socket path too long ({len(path.encode())} > 107 bytes): {path}")
        self.server.add_insecure_port(f"unix:{path}")  # raises RuntimeError if it fails
        self._socket_paths.append(path)
        return path

    def bind_tcp(self, host: str = "127.0.0.1") -> str:
        port = self.server.add_insecure_port(f"{host}:0")
        return f"{host}:{port}"

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float = 0.3) -> None:
        """Stop serving (in-flight calls get `grace` seconds), close the driver, remove
        the socket files. Bounded: returns within about grace + 1.3 s."""
        self._stopping.set()
        self.health.enter_graceful_shutdown()
        closer = getattr(self.driver, "close", None)
        if callable(closer):
            t = threading.Thread(target=_quietly, args=(closer,), name="driver-close", daemon=True)
            t.start()
            t.join(0.8)
        self.server.stop(grace).wait(grace + 0.5)
        for path in self._socket_paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove plugin socket", extra={"path": path, "error": str(exc)})


def _quietly(fn: Any) -> None:
    try:
        fn()
    except Exception:
        log.exception("driver close failed")


def build_server(
    driver_service: Any | None = None,
    *,
    base: BasePluginService | None = None,
    max_workers: int | None = None,
) -> PluginServer:
    """Build the plugin's gRPC server with every service registered (see module doc)."""
    from concurrent.futures import ThreadPoolExecutor

    workers = max_workers or int(os.environ.get("NOMAD_CTR_MAX_WORKERS", DEFAULT_MAX_WORKERS))
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ],
    )
    shutdown_requested = threading.Event()
    stopping = threading.Event()

    health_servicer = health.HealthServicer()
    health_servicer.set(HEALTH_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(
        _Controller(shutdown_requested), server
    )
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(_Stdio(stopping), server)
    grpc_broker_pb2_grpc.add_GRPCBrokerServicer_to_server(_Broker(), server)

    base = base or BasePluginService()
    base_pb2_grpc.add_BasePluginServicer_to_server(base, server)

    if driver_service is not None:
        set_config = getattr(driver_service, "set_config", None)
        if callable(set_config):
            base.add_listener(set_config)
        driver_pb2_grpc.add_DriverServicer_to_server(driver_service, server)

    return PluginServer(server, base, driver_service, health_servicer, shutdown_requested, stopping)


def handshake_line(network: str, address: str, multiplex_asked: bool = False) -> str:
    """The one stdout line go-plugin hosts wait for (§2.2). A host that set
    PLUGIN_MULTIPLEX_GRPC (Nomad never does) gets a 7th field: we do not multiplex."""
    line = f"{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|{network}|{address}|grpc|"
    return line + ("|false\n" if multiplex_asked else "\n")


def dial(address: str) -> grpc.Channel:
    """A client channel to a plugin (tests, tools): `/path` (unix) or `host:port`."""
    target = f"unix:{address}" if address.startswith("/") else address
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_receive_message_length", MAX_SEND_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ],
    )
