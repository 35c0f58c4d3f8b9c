"""LocalPlugin: play the Nomad client against a task driver plugin over our stubs
(fact sheet §11): launch, handshake, health, PluginInfo, ConfigSchema, SetConfig, Init,
Fingerprint and TaskEvents streams, TaskConfigSchema, Capabilities; then per task an
alloc dir with logmon, StartTask, WaitTask, StopTask, DestroyTask.

    with LocalPlugin.launch(agent_config="example/agent.hcl") as plugin:
        run = plugin.start_task(load_job("job.nomad"), alloc_dir="/tmp/alloc")
        result = run.wait()
        run.destroy()
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2

from nomad_ctr._pb import (
    base_pb2,
    base_pb2_grpc,
    driver_pb2,
    driver_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
    hclspec_pb2,
)
from nomad_ctr.localrun.allocdir import Echo, LogMon, TaskPaths, build_alloc_dir
from nomad_ctr.localrun.hcldec import Decoded, decode_body
from nomad_ctr.localrun.hclfile import evaluate_body
from nomad_ctr.localrun.jobfile import AgentConfig, JobTask, load_agent
from nomad_ctr.localrun.process import PluginProcess
from nomad_ctr.localrun.taskenv import (
    Allocation,
    build_task_config,
    config_variables,
    new_allocation,
    task_env,
)

__all__ = ["PLUGIN_API_VERSION", "DriverError", "ExitResult", "LocalPlugin", "TaskRun"]

PLUGIN_API_VERSION = "v0.1.0"
DEFAULT_PLUGIN = "containerd-driver"
SETUP_TIMEOUT = 30.0  # per setup RPC
FINGERPRINT_TIMEOUT = 30.0
SHUTDOWN_DEADLINE = 2.0  # Nomad's Driver.Shutdown deadline

log = logging.getLogger("nomad_ctr.localrun")


class DriverError(RuntimeError):
    """The plugin answered an RPC with an error status (or broke the protocol)."""

    def __init__(
        self, rpc: str, code: grpc.StatusCode | None, message: str, recoverable: bool = False
    ) -> None:
        name = code.name if code is not None else "PROTOCOL"
        super().__init__(
            f"{rpc}: {message}" if code is None else f"{rpc} failed ({name}): {message}"
        )
        self.rpc = rpc
        self.code = code
        self.message = message
        self.recoverable = recoverable

    @classmethod
    def from_rpc(cls, rpc: str, exc: grpc.RpcError) -> DriverError:
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else str(exc)
        return cls(rpc, code, details or "", _recoverable(exc))


def _recoverable(exc: grpc.RpcError) -> bool:
    """True if the status carries a RecoverableError{recoverable: true} detail (§7.2)."""
    try:
        from grpc_status import rpc_status

        from nomad_ctr._pb import recoverable_error_pb2

        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - no parsable details: not recoverable
        return False
    if status is None:
        return False
    for detail in status.details:
        msg = recoverable_error_pb2.RecoverableError()
        if detail.Is(msg.DESCRIPTOR):
            detail.Unpack(msg)
            return msg.recoverable
    return False


def _drain_quietly(stream: Iterator[Any]) -> None:
    try:
        for _ in stream:
            pass
    except grpc.RpcError:
        pass


@dataclass(frozen=True)
class ExitResult:
    exit_code: int
    signal: int = 0
    oom_killed: bool = False
    err: str = ""

    @property
    def successful(self) -> bool:
        """Nomad's notion: exit code 0, no signal, no error."""
        return self.exit_code == 0 and self.signal == 0 and not self.err


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


class LocalPlugin:
    """A launched, configured driver plugin (see the module doc)."""

    def __init__(self, process: PluginProcess | None, channel: grpc.Channel) -> None:
        self.process = process
        self.channel = channel
        self.base = base_pb2_grpc.BasePluginStub(channel)
        self.driver = driver_pb2_grpc.DriverStub(channel)
        self.controller = grpc_controller_pb2_grpc.GRPCControllerStub(channel)
        self.info: base_pb2.PluginInfoResponse | None = None
        self.config_schema: hclspec_pb2.Spec | None = None
        self.driver_config: Decoded | None = None
        self.task_config_schema: hclspec_pb2.Spec | None = None
        self.capabilities: driver_pb2.DriverCapabilities | None = None
        self.events: list[driver_pb2.DriverTaskEvent] = []
        self._event_listeners: list[Callable[[driver_pb2.DriverTaskEvent], None]] = []
        self._fingerprint: driver_pb2.FingerprintResponse | None = None
        self._fingerprint_cv = threading.Condition()
        self._streams: list[grpc.Future] = []
        self._closed = False
        self._lock = threading.Lock()

    # ---- launch -------------------------------------------------------------------------

    @classmethod
    def launch(
        cls,
        command: Sequence[str] | None = None,
        *,
        agent_config: AgentConfig | str | Path | None = None,
        plugin_config: Mapping[str, Any] | None = None,
        plugin_name: str = DEFAULT_PLUGIN,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        setup: bool = True,
    ) -> LocalPlugin:
        """Start the plugin executable as Nomad does and, with `setup`, play the main
        instance's start sequence. The plugin's config comes from `plugin_config` (a
        generic map, as hclfile.evaluate_body makes) or the agent file's
        plugin "<plugin_name>" { config {} } block; `args` there are passed on."""
        agent = load_agent(agent_config) if isinstance(agent_config, (str, Path)) else agent_config
        block = agent.plugins.get(plugin_name) if agent is not None else None
        if agent is not None and block is None and plugin_config is None:
            names = ", ".join(sorted(agent.plugins)) or "none"
            raise DriverError(
                "launch",
                None,
                f"the agent config has no plugin {plugin_name!r} block (has: {names})",
            )
        argv = list(command) if command else None
        if argv is None:
            from nomad_ctr.localrun.process import default_plugin_command

            argv = default_plugin_command()
        if block is not None:
            argv += list(block.args)
        config = plugin_config if plugin_config is not None else (block.config if block else None)

        process = PluginProcess.start(argv, env=env, timeout=start_timeout)
        address = process.address
        target = f"unix:{address}" if process.handshake.network == "unix" else address
        channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 2**31 - 1),
                ("grpc.max_send_message_length", 2**31 - 1),
                ("grpc.default_authority", "unused"),
            ],
        )
        plugin = cls(process, channel)
        try:
            if setup:
                plugin.setup(config)
        except BaseException:
            plugin.close()
            raise
        return plugin

    def open_host_streams(self) -> None:
        """What go-plugin's host opens right after the handshake: GRPCStdio.StreamStdio
        and GRPCBroker.StartStream, both drained in the background; their failure is
        ignored, as the host ignores it."""
        from google.protobuf import empty_pb2

        from nomad_ctr._pb import grpc_broker_pb2_grpc, grpc_stdio_pb2_grpc

        stdio = grpc_stdio_pb2_grpc.GRPCStdioStub(self.channel).StreamStdio(empty_pb2.Empty())
        closed = threading.Event()

        def no_requests() -> Iterator[Any]:  # Nomad brokers nothing: send nothing, stay open
            closed.wait()
            return
            yield

        broker = grpc_broker_pb2_grpc.GRPCBrokerStub(self.channel).StartStream(no_requests())
        self._streams += [stdio, broker]
        self._host_streams_closed = closed
        for name, stream in (("stdio", stdio), ("broker", broker)):
            threading.Thread(target=_drain_quietly, args=(stream,), name=name, daemon=True).start()

    _host_streams_closed: threading.Event | None = None

    def setup(self, config: Mapping[str, Any] | None) -> None:
        """Health, PluginInfo, ConfigSchema, SetConfig, Init, Fingerprint, TaskEvents,
        TaskConfigSchema, Capabilities (§3.3 step 4, §11)."""
        self.open_host_streams()
        if not self.health():
            raise DriverError(
                "Health/Check", None, "the plugin does not report service 'plugin' as SERVING"
            )
        self.info = self.plugin_info()
        self.config_schema = self._call(
            "ConfigSchema", self.base.ConfigSchema, base_pb2.ConfigSchemaRequest()
        ).spec
        self.set_config(config)
        self.init()
        self.start_streams()
        self.wait_fingerprint()
        self.task_config_schema = self._call(
            "TaskConfigSchema", self.driver.TaskConfigSchema, driver_pb2.TaskConfigSchemaRequest()
        ).spec
        self.capabilities = self._call(
            "Capabilities", self.driver.Capabilities, driver_pb2.CapabilitiesRequest()
        ).capabilities

    def _call(
        self, name: str, method: Any, request: Any, timeout: float | None = SETUP_TIMEOUT
    ) -> Any:
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise DriverError.from_rpc(name, exc) from None

    # ---- BasePlugin ---------------------------------------------------------------------

    def health(self, timeout: float = 10.0) -> bool:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service="plugin"), timeout=timeout)
        except grpc.RpcError:
            return False
        return resp.status == health_pb2.HealthCheckResponse.SERVING

    def plugin_info(self) -> base_pb2.PluginInfoResponse:
        info = self._call("PluginInfo", self.base.PluginInfo, base_pb2.PluginInfoRequest())
        if info.type != base_pb2.DRIVER:
            raise DriverError("PluginInfo", None, f"plugin type is {info.type}, not DRIVER")
        if not any(
            v.lstrip("v") == PLUGIN_API_VERSION.lstrip("v") for v in info.plugin_api_versions
        ):
            raise DriverError(
                "PluginInfo",
                None,
                f"plugin API versions {list(info.plugin_api_versions)} lack {PLUGIN_API_VERSION}",
            )
        return info

    def encode_plugin_config(self, config: Mapping[str, Any] | None) -> Decoded:
        """The agent's plugin config decoded with ConfigSchema (defaults applied)."""
        if self.config_schema is None:
            self.config_schema = self._call(
                "ConfigSchema", self.base.ConfigSchema, base_pb2.ConfigSchemaRequest()
            ).spec
        name = self.info.name if self.info else DEFAULT_PLUGIN
        return decode_body(config, self.config_schema, path=f"plugin {name!r}.config")

    def set_config(self, config: Mapping[str, Any] | None, *, nomad_config: bool = True) -> None:
        decoded = self.encode_plugin_config(config)
        request = base_pb2.SetConfigRequest(
            msgpack_config=decoded.msgpack, plugin_api_version=PLUGIN_API_VERSION
        )
        if nomad_config:
            request.nomad_config.driver.ClientMinPort = 14000
            request.nomad_config.driver.ClientMaxPort = 14512
        self._call("SetConfig", self.base.SetConfig, request)
        self.driver_config = decoded

    def init(self) -> None:
        try:
            self.driver.Init(driver_pb2.InitRequest(), timeout=SETUP_TIMEOUT)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise DriverError.from_rpc("Init", exc) from None

    # ---- background streams ---------------------------------------------------------------

    def start_streams(self) -> None:
        """Open Fingerprint and TaskEvents, each drained by a thread (re-opened by Nomad
        if they end; here an end is logged)."""
        fp = self.driver.Fingerprint(driver_pb2.FingerprintRequest())
        ev = self.driver.TaskEvents(driver_pb2.TaskEventsRequest())
        self._streams += [fp, ev]
        threading.Thread(
            target=self._drain_fingerprint, args=(fp,), name="fingerprint", daemon=True
        ).start()
        threading.Thread(
            target=self._drain_events, args=(ev,), name="task-events", daemon=True
        ).start()

    def _drain_fingerprint(self, stream: Iterator[driver_pb2.FingerprintResponse]) -> None:
        try:
            for msg in stream:
                with self._fingerprint_cv:
                    self._fingerprint = msg
                    self._fingerprint_cv.notify_all()
        except grpc.RpcError as exc:
            if not self._closed:
                log.warning(
                    "fingerprint stream ended: %s",
                    exc.details() if hasattr(exc, "details") else exc,
                )
                with self._fingerprint_cv:
                    self._fingerprint_error = DriverError.from_rpc("Fingerprint", exc)
                    self._fingerprint_cv.notify_all()

    def _drain_events(self, stream: Iterator[driver_pb2.DriverTaskEvent]) -> None:
        try:
            for event in stream:
                with self._lock:
                    self.events.append(event)
                    listeners = list(self._event_listeners)
                for fn in listeners:
                    try:
                        fn(event)
                    except Exception:
                        log.exception("task event listener failed")
        except grpc.RpcError as exc:
            if not self._closed:
                log.warning(
                    "task events stream ended: %s",
                    exc.details() if hasattr(exc, "details") else exc,
                )

    def on_event(self, listener: Callable[[driver_pb2.DriverTaskEvent], None]) -> None:
        with self._lock:
            self._event_listeners.append(listener)

    @property
    def fingerprint(self) -> driver_pb2.FingerprintResponse | None:
        with self._fingerprint_cv:
            return self._fingerprint

    _fingerprint_error: DriverError | None = None

    def wait_fingerprint(
        self, timeout: float = FINGERPRINT_TIMEOUT
    ) -> driver_pb2.FingerprintResponse:
        """The first fingerprint; DriverError if it does not come or is not healthy."""
        deadline = time.monotonic() + timeout
        with self._fingerprint_cv:
            while self._fingerprint is None:
                if self._fingerprint_error is not None:
                    raise self._fingerprint_error
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DriverError("Fingerprint", None, f"no fingerprint within {timeout:g}s")
                self._fingerprint_cv.wait(left)
            fp = self._fingerprint
        if fp.err:
            raise DriverError("Fingerprint", None, f"fingerprint failed: {fp.err}")
        return fp

    # ---- tasks ---------------------------------------------------------------------------

    def encode_task_config(self, config: Mapping[str, Any] | None, path: str = "config") -> Decoded:
        """A task's generic config {} decoded with TaskConfigSchema."""
        if self.task_config_schema is None:
            self.task_config_schema = self._call(
                "TaskConfigSchema",
                self.driver.TaskConfigSchema,
                driver_pb2.TaskConfigSchemaRequest(),
            ).spec
        return decode_body(config, self.task_config_schema, path=path)

    def prepare_task(
        self,
        task: JobTask,
        *,
        alloc_dir: str | Path | None = None,
        alloc: Allocation | None = None,
    ) -> tuple[driver_pb2.TaskConfig, TaskPaths]:
        """Build the alloc dir and the TaskConfig Nomad would send (no RPC besides the
        schema). Config errors raise HclDecodeError / HclError naming the key."""
        if self.info is not None and task.driver != self.info.name:
            raise DriverError(
                "StartTask",
                None,
                f"task {task.name!r} uses driver {task.driver!r}, the plugin is {self.info.name!r}",
            )
        alloc = alloc or new_allocation()
        root = (
            Path(alloc_dir)
            if alloc_dir is not None
            else Path(tempfile.mkdtemp(prefix="nomad-ctr-alloc-"))
        )
        paths = build_alloc_dir(root, task.name)
        image_fs = (
            self.capabilities is None
            or self.capabilities.fs_isolation == driver_pb2.DriverCapabilities.IMAGE
        )
        env = task_env(task, alloc, paths, fs_isolation_image=image_fs)
        generic = (
            evaluate_body(task.config, config_variables(env, task), "config") if task.config else {}
        )
        decoded = self.encode_task_config(generic, path=f"task {task.name!r}.config")
        config = build_task_config(task, alloc, paths, env=env, msgpack_config=decoded.msgpack)
        return config, paths

    def start_task(
        self,
        task: JobTask,
        *,
        alloc_dir: str | Path | None = None,
        alloc: Allocation | None = None,
        echo: Echo | None = None,
        max_kill_timeout: float = 30.0,
    ) -> TaskRun:
        config, paths = self.prepare_task(task, alloc_dir=alloc_dir, alloc=alloc)
        run = self.start_task_config(config, paths=paths, echo=echo)
        run.kill_signal = task.kill_signal
        run.kill_timeout = min(task.kill_timeout, max_kill_timeout)
        return run

    def start_task_config(
        self,
        config: driver_pb2.TaskConfig,
        *,
        paths: TaskPaths | None = None,
        echo: Echo | None = None,
    ) -> TaskRun:
        """StartTask with a ready TaskConfig; runs logmon on its FIFOs when `paths` is given."""
        logmon = LogMon(paths, echo) if paths is not None else None
        try:
            resp = self._call(
                "StartTask",
                self.driver.StartTask,
                driver_pb2.StartTaskRequest(task=config),
                timeout=None,
            )
        except BaseException:
            if logmon is not None:
                logmon.stop(0)
            raise
        if not resp.HasField("handle") or not resp.handle.config.id:
            if logmon is not None:
                logmon.stop(0)
            raise DriverError("StartTask", None, "the response has no handle with the task config")
        return TaskRun(self, config, resp.handle, paths, logmon)

    def recover_task(
        self,
        handle: driver_pb2.TaskHandle,
        *,
        previous: TaskRun | None = None,
        paths: TaskPaths | None = None,
        echo: Echo | None = None,
    ) -> TaskRun:
        """RecoverTask with a stored handle (task_id left empty, as Nomad does). With
        `previous` (the run from before a plugin crash) its logmon and kill settings carry
        over, as the Nomad client's logmon outlives a plugin."""
        self._call(
            "RecoverTask",
            self.driver.RecoverTask,
            driver_pb2.RecoverTaskRequest(handle=handle),
            timeout=None,
        )
        if previous is not None:
            run = TaskRun(self, handle.config, handle, previous.paths, previous._logmon)
            previous._logmon = None
            run.kill_signal, run.kill_timeout = previous.kill_signal, previous.kill_timeout
            return run
        logmon = LogMon(paths, echo) if paths is not None else None
        return TaskRun(self, handle.config, handle, paths, logmon)

    # ---- teardown --------------------------------------------------------------------------

    def crash(self) -> None:
        """SIGKILL the plugin process (tests of plugin-crash recovery); the channel and
        streams are closed, tasks keep running in containerd."""
        self._closed = True
        if self._host_streams_closed is not None:
            self._host_streams_closed.set()
        for stream in self._streams:
            stream.cancel()
        self.channel.close()
        if self.process is not None:
            self.process.proc.kill()
            self.process.proc.wait()

    def close(self) -> int | None:
        """Driver.Shutdown (2 s), GRPCController.Shutdown, close the channel, wait up to
        2 s for the process to exit, then SIGKILL. Returns its exit status."""
        if self._closed:
            return self.process.proc.returncode if self.process else None
        self._closed = True
        for call in (
            lambda: self.driver.Shutdown(driver_pb2.ShutdownRequest(), timeout=SHUTDOWN_DEADLINE),
            lambda: self.controller.Shutdown(
                grpc_controller_pb2.Empty(), timeout=SHUTDOWN_DEADLINE
            ),
        ):
            try:
                call()
            except grpc.RpcError:
                pass  # UNIMPLEMENTED or gone: Nomad ignores these errors too
        if self._host_streams_closed is not None:
            self._host_streams_closed.set()
        for stream in self._streams:
            stream.cancel()
        self.channel.close()
        return self.process.kill(2.0) if self.process else None

    def __enter__(self) -> LocalPlugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TaskRun:
    """One started task: the handle, its log files, and the per-task RPCs."""

    def __init__(
        self,
        plugin: LocalPlugin,
        config: driver_pb2.TaskConfig,
        handle: driver_pb2.TaskHandle,
        paths: TaskPaths | None,
        logmon: LogMon | None,
    ) -> None:
        self.plugin = plugin
        self.config = config
        self.handle = handle
        self.paths = paths
        self.kill_signal = ""
        self.kill_timeout = 5.0
        self._logmon = logmon
        self._result: ExitResult | None = None
        self._destroyed = False

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def result(self) -> ExitResult | None:
        return self._result

    def wait(self, timeout: float | None = None) -> ExitResult:
        """WaitTask; TimeoutError if the task is still running after `timeout`."""
        if self._result is not None:
            return self._result
        try:
            resp = self.plugin.driver.WaitTask(
                driver_pb2.WaitTaskRequest(task_id=self.id), timeout=timeout
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
                raise TimeoutError(
                    f"task {self.config.name!r} still running after {timeout:g}s"
                ) from None
            raise DriverError.from_rpc("WaitTask", exc) from None
        r = resp.result
        self._result = ExitResult(r.exit_code, r.signal, r.oom_killed, resp.err)
        return self._result

    def stop(self, signal: str | None = None, timeout: float | None = None) -> None:
        """StopTask with the job's kill_signal / kill_timeout unless given."""
        request = driver_pb2.StopTaskRequest(
            task_id=self.id,
            signal=self.kill_signal if signal is None else signal,
            timeout=_duration(self.kill_timeout if timeout is None else timeout),
        )
        self.plugin._call("StopTask", self.plugin.driver.StopTask, request, timeout=None)

    def destroy(self, force: bool = True) -> None:
        """DestroyTask (force, as Nomad always sends), then let logmon drain and stop."""
        if self._destroyed:
            return
        self.plugin._call(
            "DestroyTask",
            self.plugin.driver.DestroyTask,
            driver_pb2.DestroyTaskRequest(task_id=self.id, force=force),
        )
        self._destroyed = True
        self.stop_logs()

    def stop_logs(self, quiet: float = 0.2) -> None:
        if self._logmon is not None:
            self._logmon.stop(quiet)
            self._logmon = None

    def inspect(self) -> driver_pb2.InspectTaskResponse:
        return self.plugin._call(
            "InspectTask",
            self.plugin.driver.InspectTask,
            driver_pb2.InspectTaskRequest(task_id=self.id),
        )

    def signal(self, signal: str) -> None:
        self.plugin._call(
            "SignalTask",
            self.plugin.driver.SignalTask,
            driver_pb2.SignalTaskRequest(task_id=self.id, signal=signal),
        )

    def exec(self, command: Sequence[str], timeout: float = 0.0) -> driver_pb2.ExecTaskResponse:
        request = driver_pb2.ExecTaskRequest(
            task_id=self.id, command=list(command), timeout=_duration(timeout)
        )
        return self.plugin._call("ExecTask", self.plugin.driver.ExecTask, request, timeout=None)

    def stats(self, interval: float = 1.0) -> Iterator[driver_pb2.TaskStats]:
        """TaskStats samples until the caller stops iterating."""
        stream = self.plugin.driver.TaskStats(
            driver_pb2.TaskStatsRequest(task_id=self.id, collection_interval=_duration(interval))
        )
        try:
            for resp in stream:
                yield resp.stats
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise DriverError.from_rpc("TaskStats", exc) from None
        finally:
            stream.cancel()

    def stdout(self) -> bytes:
        return (
            self.paths.stdout_file.read_bytes()
            if self.paths and self.paths.stdout_file.exists()
            else b""
        )

    def stderr(self) -> bytes:
        return (
            self.paths.stderr_file.read_bytes()
            if self.paths and self.paths.stderr_file.exists()
            else b""
        )

    def __enter__(self) -> TaskRun:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._result is None:
                try:
                    self.stop()
                except DriverError:
                    pass
            self.destroy()
        finally:
            self.stop_logs(0)
