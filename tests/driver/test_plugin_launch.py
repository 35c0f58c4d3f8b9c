"""The plugin process as Nomad sees it: launch with the magic cookie, handshake, the
infrastructure services, BasePlugin, shutdown; plus the in-process build_server seam.

No containerd needed, so these are `unit` tests (they run everywhere).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from nomad_ctr._pb import (
    base_pb2,
    base_pb2_grpc,
    driver_pb2,
    driver_pb2_grpc,
    grpc_broker_pb2,
    grpc_broker_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    grpc_stdio_pb2_grpc,
    recoverable_error_pb2,
)
from nomad_ctr.driver import cty, errors
from nomad_ctr.driver.capabilities import (
    capabilities_response,
    task_config_schema_response,
)
from nomad_ctr.driver.config import ConfigError, DriverConfig
from nomad_ctr.driver.config_schema import driver_config_spec
from nomad_ctr.driver.hclspec import implied_type
from nomad_ctr.driver.plugin import (
    MAGIC_COOKIE_KEY,
    MAGIC_COOKIE_VALUE,
    build_server,
    dial,
)

pytestmark = pytest.mark.unit

DRIVER_TYPE = implied_type(driver_config_spec())
GOOD_CONFIG = cty.encode({"containerd_runtime": "io.containerd.runc.v2"}, DRIVER_TYPE)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
LEVELS = {"trace", "debug", "info", "warn", "error"}


def plugin_command() -> list[str]:
    exe = shutil.which("containerd-driver")
    return [exe] if exe else [sys.executable, "-m", "nomad_ctr.driver"]


def nomad_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
            "PLUGIN_PROTOCOL_VERSIONS": "2",
            "PLUGIN_MIN_PORT": "10000",
            "PLUGIN_MAX_PORT": "25000",
        }
    )
    env.update(extra)
    return env


@dataclass
class Plugin:
    proc: subprocess.Popen[bytes]
    handshake: str
    path: str
    channel: grpc.Channel
    stderr_lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def base(self) -> base_pb2_grpc.BasePluginStub:
        return base_pb2_grpc.BasePluginStub(self.channel)

    def shutdown(self) -> int:
        grpc_controller_pb2_grpc.GRPCControllerStub(self.channel).Shutdown(
            grpc_controller_pb2.Empty(), timeout=5
        )
        return self.proc.wait(timeout=2)  # go-plugin SIGKILLs after 2 s

    def logs(self) -> list[str]:
        if self.reader is not None:
            self.reader.join(timeout=5)
        return list(self.stderr_lines)


def launch(tmp_path: Path, *, drain_stderr: bool = True, **env: str) -> Plugin:
    proc = subprocess.Popen(
        plugin_command(),
        env=nomad_env(PLUGIN_UNIX_SOCKET_DIR=str(tmp_path), **env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline().decode()
    lines: list[str] = []

    def drain(stream: Any) -> None:
        for raw in stream:
            lines.append(raw.decode(errors="replace").rstrip("\n"))

    reader = None
    if drain_stderr:
        reader = threading.Thread(target=drain, args=(proc.stderr,), daemon=True)
        reader.start()
    fields = line.strip().split("|")
    assert len(fields) >= 5, f"bad handshake {line!r}, stderr: {lines}"
    return Plugin(proc, line, fields[3], dial(fields[3]), lines, reader)


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[Plugin]:
    p = launch(tmp_path)
    yield p
    p.channel.close()
    if p.proc.poll() is None:
        p.proc.kill()
        p.proc.wait()


# ---- launch -------------------------------------------------------------------------------


def test_without_cookie_exits_1_with_a_message() -> None:
    env = {k: v for k, v in os.environ.items() if k != MAGIC_COOKIE_KEY}
    done = subprocess.run(plugin_command(), env=env, capture_output=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == b""
    assert b"Nomad task driver plugin" in done.stderr


def test_wrong_cookie_and_wrong_protocol_exit_1() -> None:
    for env in (nomad_env(**{MAGIC_COOKIE_KEY: "nope"}), nomad_env(PLUGIN_PROTOCOL_VERSIONS="1")):
        done = subprocess.run(plugin_command(), env=env, capture_output=True, timeout=60)
        assert done.returncode == 1 and done.stdout == b""


def test_handshake_line(plugin: Plugin, tmp_path: Path) -> None:
    assert plugin.handshake.endswith("\n")
    core, app, network, address, protocol, *rest = plugin.handshake.strip().split("|")
    assert (core, app, network, protocol) == ("1", "2", "unix", "grpc")
    assert rest == [""]  # what Go plugins print: a trailing "|"
    assert address.startswith(str(tmp_path) + "/")  # PLUGIN_UNIX_SOCKET_DIR honoured
    assert stat.S_ISSOCK(os.stat(address).st_mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(address)).st_mode) == 0o700


def test_health_serving(plugin: Plugin) -> None:
    stub = health_pb2_grpc.HealthStub(plugin.channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service="plugin"), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_plugin_info(plugin: Plugin) -> None:
    info = plugin.base().PluginInfo(base_pb2.PluginInfoRequest(), timeout=10)
    assert info.type == base_pb2.DRIVER
    assert list(info.plugin_api_versions) == ["v0.1.0"]
    assert info.name == "containerd-driver"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", info.plugin_version)


def test_config_schema(plugin: Plugin) -> None:
    spec = plugin.base().ConfigSchema(base_pb2.ConfigSchemaRequest(), timeout=10).spec
    runtime = spec.object.attributes["containerd_runtime"]
    assert runtime.Attr.type == "string" and runtime.Attr.required
    assert spec == driver_config_spec()


def test_set_config_repeatable_with_and_without_nomad_config(plugin: Plugin) -> None:
    base = plugin.base()
    for _ in range(2):  # the validation launch sends it twice, no nomad_config
        base.SetConfig(base_pb2.SetConfigRequest(msgpack_config=GOOD_CONFIG), timeout=10)
    nomad = base_pb2.NomadConfig(driver=base_pb2.NomadDriverConfig(ClientMinPort=14000, ClientMaxPort=14512))
    base.SetConfig(
        base_pb2.SetConfigRequest(msgpack_config=GOOD_CONFIG, nomad_config=nomad, plugin_api_version="v0.1.0"),
        timeout=10,
    )


def test_set_config_warns_of_plugin_auth_without_registry(plugin: Plugin) -> None:
    base = plugin.base()
    for auth in ({"username": "u", "password": "pinned-pw", "registry": "registry.example.com"},
                 {"username": "u", "password": "open-pw"}):
        config = cty.encode({"containerd_runtime": "io.containerd.runc.v2", "auth": auth}, DRIVER_TYPE)
        base.SetConfig(base_pb2.SetConfigRequest(msgpack_config=config), timeout=10)
    base.PluginInfo(base_pb2.PluginInfoRequest(), timeout=10)
    plugin.shutdown()
    lines = [json.loads(line) for line in plugin.logs()]
    assert [e["@message"] for e in lines if e["@level"] == "warn" and "auth" in e["@message"]] == [
        "plugin auth has no registry: its credentials are offered to the registry of any image a task "
        "pulls without auth of its own; set auth.registry to pin them to one host"
    ]  # once: for the unpinned block only
    text = "".join(plugin.logs())
    assert "pinned-pw" not in text and "open-pw" not in text


def test_set_config_rejects_bad_config(plugin: Plugin) -> None:
    bad = cty.encode({"containerd_runtime": "/tmp/evil"}, DRIVER_TYPE)
    with pytest.raises(grpc.RpcError) as err:
        plugin.base().SetConfig(base_pb2.SetConfigRequest(msgpack_config=bad), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == (
        'invalid driver config: containerd_runtime: "/tmp/evil" is not a containerd runtime '
        "name like io.containerd.runc.v2 (no paths)"
    )
    # still serving afterwards
    plugin.base().PluginInfo(base_pb2.PluginInfoRequest(), timeout=10)


def test_oversized_message_refused(plugin: Plugin) -> None:
    huge = base_pb2.SetConfigRequest(msgpack_config=b"\x00" * (9 * 1024 * 1024))
    with pytest.raises(grpc.RpcError) as err:
        plugin.base().SetConfig(huge, timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_stdio_stream_stays_open_and_broker_accepts(plugin: Plugin) -> None:
    stdio = grpc_stdio_pb2_grpc.GRPCStdioStub(plugin.channel)
    from google.protobuf import empty_pb2

    with pytest.raises(grpc.RpcError) as err:
        list(stdio.StreamStdio(empty_pb2.Empty(), timeout=1))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # open until the host gives up
    broker = grpc_broker_pb2_grpc.GRPCBrokerStub(plugin.channel)
    assert list(broker.StartStream(iter([grpc_broker_pb2.ConnInfo(service_id=1)]), timeout=10)) == []


def test_sigint_ignored(plugin: Plugin) -> None:
    plugin.proc.send_signal(signal.SIGINT)
    info = plugin.base().PluginInfo(base_pb2.PluginInfoRequest(), timeout=10)
    assert info.name == "containerd-driver"
    assert plugin.proc.poll() is None


def test_controller_shutdown_exits_and_cleans_up(plugin: Plugin) -> None:
    assert plugin.shutdown() == 0
    assert not os.path.exists(plugin.path)
    assert not os.path.exists(os.path.dirname(plugin.path))


def test_sigterm_exits(plugin: Plugin) -> None:
    plugin.proc.send_signal(signal.SIGTERM)
    assert plugin.proc.wait(timeout=10) == 0
    assert not os.path.exists(plugin.path)


def test_stderr_is_hclog_json(plugin: Plugin) -> None:
    bad = cty.encode({"containerd_runtime": "runc"}, DRIVER_TYPE)
    with pytest.raises(grpc.RpcError):
        plugin.base().SetConfig(base_pb2.SetConfigRequest(msgpack_config=bad), timeout=10)
    plugin.shutdown()
    lines = plugin.logs()
    assert lines, "the plugin logged nothing"
    for line in lines:
        entry = json.loads(line)
        assert isinstance(entry, dict)
        assert entry["@level"] in LEVELS
        assert isinstance(entry["@message"], str)
        assert TIMESTAMP.match(entry["@timestamp"]), entry["@timestamp"]
        assert isinstance(entry["@module"], str)
    assert any(json.loads(line)["@level"] == "warn" for line in lines)


def test_secrets_not_logged(plugin: Plugin) -> None:
    secret_config = cty.encode(
        {"containerd_runtime": "io.containerd.runc.v2", "auth": {"username": "u", "password": "s3cr3t-pw"}},
        DRIVER_TYPE,
    )
    plugin.base().SetConfig(base_pb2.SetConfigRequest(msgpack_config=secret_config), timeout=10)
    plugin.shutdown()
    assert not any("s3cr3t-pw" in line for line in plugin.logs())


def test_survives_closed_stdout_and_stderr(tmp_path: Path) -> None:
    # the agent died: our pipes are gone (EPIPE on every write); keep serving
    plugin = launch(tmp_path, drain_stderr=False)
    try:
        assert plugin.proc.stdout is not None and plugin.proc.stderr is not None
        plugin.proc.stdout.close()
        plugin.proc.stderr.close()
        bad = cty.encode({"containerd_runtime": "runc"}, DRIVER_TYPE)
        for _ in range(3):  # each rejection logs a warning
            with pytest.raises(grpc.RpcError):
                plugin.base().SetConfig(base_pb2.SetConfigRequest(msgpack_config=bad), timeout=10)
        info = plugin.base().PluginInfo(base_pb2.PluginInfoRequest(), timeout=10)
        assert info.name == "containerd-driver"
        assert plugin.shutdown() == 0
    finally:
        plugin.channel.close()
        if plugin.proc.poll() is None:
            plugin.proc.kill()
            plugin.proc.wait()


# ---- the build_server seam, in process --------------------------------------------------


class ToyDriver(driver_pb2_grpc.DriverServicer):
    """Stands in for service.DriverService to exercise the seam and error helpers."""

    def __init__(self) -> None:
        self.configs: list[DriverConfig] = []
        self.closed = False

    def set_config(self, config: DriverConfig, nomad: Any, version: str) -> None:
        if config.namespace == "refused":
            raise ConfigError("driver", "namespace", "is refused by the driver", config.namespace)
        self.configs.append(config)

    def close(self) -> None:
        self.closed = True

    def TaskConfigSchema(self, request: Any, context: grpc.ServicerContext) -> Any:
        return task_config_schema_response()

    def Capabilities(self, request: Any, context: grpc.ServicerContext) -> Any:
        return capabilities_response()

    @errors.grpc_errors
    def StartTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.task.name == "flaky":
            raise errors.Recoverable("registry unreachable")
        if request.task.name == "broken":
            raise RuntimeError("boom")
        if request.task.name == "aborts":
            errors.abort_invalid(context, "invalid task config: image: is required")
        raise errors.InvalidArgument("invalid task config: image: is required")

    @errors.grpc_errors
    def WaitTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        raise errors.TaskNotFound()

    @errors.grpc_errors
    def TaskStats(self, request: Any, context: grpc.ServicerContext) -> Any:
        yield driver_pb2.TaskStatsResponse()
        errors.abort_not_found(context)


@pytest.fixture
def inproc(tmp_path: Path) -> Iterator[tuple[ToyDriver, Any, grpc.Channel]]:
    toy = ToyDriver()
    server = build_server(toy, max_workers=16)
    path = server.bind_unix(str(tmp_path / "p.sock"))
    server.start()
    channel = dial(path)
    yield toy, server, channel
    channel.close()
    server.stop(0)


def test_seam_registers_driver_and_config_listener(inproc: Any) -> None:
    toy, server, channel = inproc
    drv = driver_pb2_grpc.DriverStub(channel)
    caps = drv.Capabilities(driver_pb2.CapabilitiesRequest(), timeout=10).capabilities
    assert caps.fs_isolation == driver_pb2.DriverCapabilities.IMAGE
    assert caps.send_signals and caps.exec and not caps.must_create_network
    assert list(caps.network_isolation_modes) == [0, 1, 2]  # HOST, GROUP, TASK
    spec = drv.TaskConfigSchema(driver_pb2.TaskConfigSchemaRequest(), timeout=10).spec
    assert spec.object.attributes["image"].Attr.required
    base = base_pb2_grpc.BasePluginStub(channel)
    base.SetConfig(base_pb2.SetConfigRequest(msgpack_config=GOOD_CONFIG), timeout=10)
    assert [c.containerd_runtime for c in toy.configs] == ["io.containerd.runc.v2"]
    assert server.base.config == toy.configs[0]
    refused = cty.encode({"containerd_runtime": "io.containerd.runc.v2", "namespace": "refused"}, DRIVER_TYPE)
    with pytest.raises(grpc.RpcError) as err:
        base.SetConfig(base_pb2.SetConfigRequest(msgpack_config=refused), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == 'invalid driver config: namespace: "refused" is refused by the driver'
    assert server.base.config == toy.configs[0]  # the refused config did not stick


def test_recoverable_error_detail(inproc: Any) -> None:
    _, _, channel = inproc
    drv = driver_pb2_grpc.DriverStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        drv.StartTask(driver_pb2.StartTaskRequest(task=driver_pb2.TaskConfig(name="flaky")), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    status = rpc_status.from_call(err.value)
    assert status is not None and status.message == "registry unreachable"
    detail = status.details[0]
    assert detail.type_url == errors.RECOVERABLE_TYPE_URL
    unpacked = recoverable_error_pb2.RecoverableError()
    assert detail.Unpack(unpacked) and unpacked.recoverable


@pytest.mark.parametrize(
    "name, code, message",
    [
        ("bad", grpc.StatusCode.INVALID_ARGUMENT, "invalid task config: image: is required"),
        ("aborts", grpc.StatusCode.INVALID_ARGUMENT, "invalid task config: image: is required"),
        ("broken", grpc.StatusCode.INTERNAL, "StartTask: internal error: boom"),
    ],
)
def test_error_mapping(inproc: Any, name: str, code: grpc.StatusCode, message: str) -> None:
    _, _, channel = inproc
    with pytest.raises(grpc.RpcError) as err:
        driver_pb2_grpc.DriverStub(channel).StartTask(
            driver_pb2.StartTaskRequest(task=driver_pb2.TaskConfig(name=name)), timeout=10
        )
    assert (err.value.code(), err.value.details()) == (code, message)
    assert rpc_status.from_call(err.value) is None  # no RecoverableError: not retried


def test_not_found_unary_and_stream(inproc: Any) -> None:
    _, _, channel = inproc
    drv = driver_pb2_grpc.DriverStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        drv.WaitTask(driver_pb2.WaitTaskRequest(task_id="nope"), timeout=10)
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, "task not found for given id")
    stream = drv.TaskStats(driver_pb2.TaskStatsRequest(task_id="nope"), timeout=10)
    assert next(stream).stats is not None
    with pytest.raises(grpc.RpcError) as err:
        next(stream)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_stop_closes_driver_and_removes_socket(tmp_path: Path) -> None:
    toy = ToyDriver()
    server = build_server(toy, max_workers=4)
    path = server.bind_unix(str(tmp_path / "q.sock"))
    server.start()
    server.stop(0)
    assert toy.closed and not os.path.exists(path)


def test_without_driver_the_driver_service_is_unimplemented(tmp_path: Path) -> None:
    server = build_server(None, max_workers=4)
    path = server.bind_unix(str(tmp_path / "r.sock"))
    server.start()
    try:
        with dial(path) as channel:
            with pytest.raises(grpc.RpcError) as err:
                driver_pb2_grpc.DriverStub(channel).Capabilities(driver_pb2.CapabilitiesRequest(), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            info = base_pb2_grpc.BasePluginStub(channel).PluginInfo(base_pb2.PluginInfoRequest(), timeout=10)
            assert info.type == base_pb2.DRIVER
    finally:
        server.stop(0)


# ---- hclog formatting, in process ----------------------------------------------------------


def _log_lines(emit: Any) -> list[dict[str, Any]]:
    import io
    import logging as std_logging

    from nomad_ctr.driver.logging import setup_logging

    stream = io.StringIO()
    handler = setup_logging("trace", stream=stream)
    try:
        emit(std_logging.getLogger("nomad_ctr.driver.test"))
    finally:
        for name in ("nomad_ctr", "grpc"):
            std_logging.getLogger(name).removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_hclog_levels_and_fields() -> None:
    from nomad_ctr.driver.logging import TRACE

    def emit(log: Any) -> None:
        log.log(TRACE, "t")
        log.debug("d")
        log.info("i %s", "arg", extra={"task_id": "a/b/c", "count": 3})
        log.warning("w")
        log.error("e")
        log.critical("c")

    lines = _log_lines(emit)
    assert [line["@level"] for line in lines] == ["trace", "debug", "info", "warn", "error", "error"]
    info = lines[2]
    assert info["@message"] == "i arg" and info["task_id"] == "a/b/c" and info["count"] == 3
    assert info["@module"] == "driver.test"
    assert all(TIMESTAMP.match(line["@timestamp"]) for line in lines)


def test_hclog_redacts_secrets() -> None:
    from nomad_ctr.driver.logging import register_secret

    register_secret("pa55word-xyz")

    def emit(log: Any) -> None:
        log.info("pulling with pa55word-xyz", extra={"password": "anything", "auth": {"username": "u"}})
        log.info("nested", extra={"opts": {"registry_token": "t0k", "host": "h pa55word-xyz"}})
        try:
            raise ValueError("bad pa55word-xyz")
        except ValueError:
            log.exception("failed")

    lines = _log_lines(emit)
    text = json.dumps(lines)
    assert "pa55word-xyz" not in text and "anything" not in text and "t0k" not in text
    assert lines[0]["password"] == "<redacted>" and lines[0]["auth"] == "<redacted>"
    assert lines[1]["opts"] == {"registry_token": "<redacted>", "host": "h <redacted>"}
    assert "ValueError" in lines[2]["error"]


def test_handshake_asks_no_multiplexing_unless_asked() -> None:
    from nomad_ctr.driver.plugin import handshake_line

    assert handshake_line("unix", "/s") == "1|2|unix|/s|grpc|\n"
    assert handshake_line("unix", "/s", multiplex_asked=True) == "1|2|unix|/s|grpc||false\n"


def test_many_long_lived_streams_do_not_starve_unary_calls(tmp_path: Path) -> None:
    # Nomad keeps several streams and one blocking WaitTask per task open at once
    from google.protobuf import empty_pb2

    server = build_server(None)
    path = server.bind_unix(str(tmp_path / "s.sock"))
    server.start()
    calls = []
    try:
        with dial(path) as channel:
            stdio = grpc_stdio_pb2_grpc.GRPCStdioStub(channel)
            calls = [stdio.StreamStdio(empty_pb2.Empty()) for _ in range(300)]
            health = health_pb2_grpc.HealthStub(channel)
            reply = health.Check(health_pb2.HealthCheckRequest(service="plugin"), timeout=30)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            info = base_pb2_grpc.BasePluginStub(channel).PluginInfo(base_pb2.PluginInfoRequest(), timeout=30)
            assert info.name == "containerd-driver"
            for call in calls:
                call.cancel()
    finally:
        server.stop(0)
