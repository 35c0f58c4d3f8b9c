"""The Driver gRPC service (fact sheet §5-§7): a thin layer that translates messages
and delegates to the task runner, the handles and the helpers.

Every RPC is sync `(self, request, context)` on build_server's large thread pool;
long calls (WaitTask, streams) wait on threading.Events and notice a client that went
away through context.is_active().
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from nomad_ctr import errors
from nomad_ctr._pb import base_pb2, driver_pb2, driver_pb2_grpc
from nomad_ctr.driver.capabilities import (
    capabilities_response,
    task_config_schema_response,
)
from nomad_ctr.driver.config import DriverConfig
from nomad_ctr.driver.connection import Connection
from nomad_ctr.driver.errors import FailedPrecondition, InvalidArgument, grpc_errors
from nomad_ctr.driver.events import TaskEvents
from nomad_ctr.driver.execs import ExecTimeout, run_exec, stream_exec
from nomad_ctr.driver.exits import ExitWatcher
from nomad_ctr.driver.fingerprint import fingerprints
from nomad_ctr.driver.handle import ExitInfo, TaskHandle
from nomad_ctr.driver.state import StateError, TaskStore
from nomad_ctr.driver.stats import CpuSampler, stats_response
from nomad_ctr.driver.taskrunner import TaskRunner, as_driver_error
from nomad_ctr.signals import parse_signal

__all__ = ["HANDLE_VERSION", "DriverService"]

log = logging.getLogger("nomad_ctr.driver.service")

HANDLE_VERSION = 1
GO_ZERO_TIME_SECONDS = -62135596800  # Go's time.Time{} ("not completed")
_State = driver_pb2


def _timestamp(when: datetime | None) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if when is None:
        ts.seconds, ts.nanos = GO_ZERO_TIME_SECONDS, 0
    else:
        ts.FromDatetime(when)
    return ts


def _exit_result(info: ExitInfo | None) -> driver_pb2.ExitResult:
    if info is None:
        return driver_pb2.ExitResult()
    return driver_pb2.ExitResult(exit_code=info.exit_code, signal=info.signal, oom_killed=info.oom_killed)


def _seconds(duration: Any) -> float:
    return duration.seconds + duration.nanos / 1e9


class DriverService(driver_pb2_grpc.DriverServicer):
    def __init__(self) -> None:
        self.conn = Connection()
        self.store = TaskStore()
        self.events = TaskEvents()
        self.watcher = ExitWatcher(self.conn, self.store)
        self.runner = TaskRunner(self.conn, self.store, self.watcher, self.events)

    # ---- hooks called by plugin.py ------------------------------------------------------

    def set_config(self, config: DriverConfig, nomad_config: base_pb2.NomadConfig | None, api_version: str) -> None:
        self.conn.configure(config)  # no side effects: the client connects on first use

    def close(self) -> None:
        self.watcher.close()
        self.events.close()
        self.conn.close()

    def _handle(self, task_id: str) -> TaskHandle:
        return self.runner.get(task_id)

    # ---- schema, capabilities, fingerprint, events ------------------------------------------

    def Init(self, request: Any, context: grpc.ServicerContext) -> driver_pb2.InitResponse:
        return driver_pb2.InitResponse()

    def Shutdown(self, request: Any, context: grpc.ServicerContext) -> driver_pb2.ShutdownResponse:
        # tasks outlive the plugin: nothing to stop here
        return driver_pb2.ShutdownResponse()

    def TaskConfigSchema(self, request: Any, context: grpc.ServicerContext) -> driver_pb2.TaskConfigSchemaResponse:
        return task_config_schema_response()

    def Capabilities(self, request: Any, context: grpc.ServicerContext) -> driver_pb2.CapabilitiesResponse:
        return capabilities_response()

    def Fingerprint(self, request: Any, context: grpc.ServicerContext) -> Iterator[driver_pb2.FingerprintResponse]:
        yield from fingerprints(self.conn, context.is_active)

    def TaskEvents(self, request: Any, context: grpc.ServicerContext) -> Iterator[driver_pb2.DriverTaskEvent]:
        yield from self.events.stream(context.is_active)

    # ---- lifecycle ----------------------------------------------------------------------

    @grpc_errors
    def StartTask(self, request: driver_pb2.StartTaskRequest, context: grpc.ServicerContext) -> driver_pb2.StartTaskResponse:
        handle, driver_state = self.runner.start(request.task)
        return driver_pb2.StartTaskResponse(
            result=driver_pb2.StartTaskResponse.SUCCESS,
            handle=driver_pb2.TaskHandle(
                version=HANDLE_VERSION, config=request.task, state=_State.RUNNING, driver_state=driver_state
            ),
            network_override=handle.network,
        )

    @grpc_errors
    def RecoverTask(self, request: driver_pb2.RecoverTaskRequest, context: grpc.ServicerContext) -> driver_pb2.RecoverTaskResponse:
        if not request.HasField("handle"):
            raise InvalidArgument("RecoverTask: handle is required")
        try:
            self.runner.recover(request.handle, request.task_id)
        except (errors.ContainerdError, StateError) as exc:
            raise as_driver_error(exc, "recover task") from None
        return driver_pb2.RecoverTaskResponse()

    @grpc_errors
    def WaitTask(self, request: driver_pb2.WaitTaskRequest, context: grpc.ServicerContext) -> driver_pb2.WaitTaskResponse:
        handle = self._handle(request.task_id)
        info = handle.wait_while(context.is_active)
        if info is None:
            return driver_pb2.WaitTaskResponse(err="wait cancelled")
        return driver_pb2.WaitTaskResponse(result=_exit_result(info), err=info.err)

    @grpc_errors
    def StopTask(self, request: driver_pb2.StopTaskRequest, context: grpc.ServicerContext) -> driver_pb2.StopTaskResponse:
        timeout = _seconds(request.timeout) if request.HasField("timeout") else 5.0
        try:
            self.runner.stop(request.task_id, timeout, request.signal)
        except errors.ContainerdError as exc:
            raise as_driver_error(exc, "stop task") from None
        return driver_pb2.StopTaskResponse()

    @grpc_errors
    def DestroyTask(self, request: driver_pb2.DestroyTaskRequest, context: grpc.ServicerContext) -> driver_pb2.DestroyTaskResponse:
        try:
            self.runner.destroy(request.task_id, request.force)
        except errors.ContainerdError as exc:
            raise as_driver_error(exc, "destroy task") from None
        return driver_pb2.DestroyTaskResponse()

    @grpc_errors
    def InspectTask(self, request: driver_pb2.InspectTaskRequest, context: grpc.ServicerContext) -> driver_pb2.InspectTaskResponse:
        handle = self._handle(request.task_id)
        info = handle.result
        status = driver_pb2.TaskStatus(
            id=handle.task_id,
            name=handle.state.task_name,
            state=_State.EXITED if info is not None else _State.RUNNING,
            started_at=_timestamp(handle.started_at),
            completed_at=_timestamp(handle.completed_at if info is not None else None),
            result=_exit_result(info),
        )
        attrs = {"container_id": handle.container_id, "namespace": handle.state.namespace,
                 "image": handle.state.image}
        return driver_pb2.InspectTaskResponse(task=status, driver=driver_pb2.TaskDriverStatus(attributes=attrs),
                                              network_override=handle.network)

    @grpc_errors
    def TaskStats(self, request: driver_pb2.TaskStatsRequest, context: grpc.ServicerContext) -> Iterator[driver_pb2.TaskStatsResponse]:
        handle = self._handle(request.task_id)
        interval = self.conn.config.stats_interval if self.conn.configured else None
        if not interval:
            interval = _seconds(request.collection_interval) if request.HasField("collection_interval") else 0.0
        interval = interval if interval > 0 else 1.0
        sampler = CpuSampler()
        while context.is_active() and not handle.exited.is_set() and not handle.destroyed:
            try:
                metrics = handle.container.stats()
            except errors.ContainerdError as exc:
                log.debug("stats sample failed", extra={"task_id": handle.task_id, "error": str(exc)})
            else:
                yield stats_response(handle.task_id, metrics, sampler)
            if handle.exited.wait(interval):
                return

    @grpc_errors
    def SignalTask(self, request: driver_pb2.SignalTaskRequest, context: grpc.ServicerContext) -> driver_pb2.SignalTaskResponse:
        handle = self._handle(request.task_id)
        try:
            number = parse_signal(request.signal)
        except errors.InvalidArgument:
            raise InvalidArgument(f"invalid signal name {request.signal!r}") from None
        if handle.exited.is_set():
            raise FailedPrecondition(f"task {request.task_id} is not running")
        try:
            handle.container.kill(number)
        except errors.ContainerdError as exc:
            raise as_driver_error(exc, "signal task") from None
        return driver_pb2.SignalTaskResponse()

    def _running(self, task_id: str) -> TaskHandle:
        handle = self._handle(task_id)
        if handle.exited.is_set():
            raise FailedPrecondition(f"task {task_id} is not running")
        return handle

    @grpc_errors
    def ExecTask(self, request: driver_pb2.ExecTaskRequest, context: grpc.ServicerContext) -> driver_pb2.ExecTaskResponse:
        handle = self._running(request.task_id)
        if not request.command:
            raise InvalidArgument("exec: command is required")
        timeout = _seconds(request.timeout) if request.HasField("timeout") else 0.0
        try:
            stdout, stderr, code = run_exec(handle.container, list(request.command), timeout or None)
        except ExecTimeout as exc:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
        except errors.ContainerdError as exc:
            raise FailedPrecondition(f"exec {list(request.command)!r} failed: {exc}") from None
        return driver_pb2.ExecTaskResponse(stdout=stdout, stderr=stderr, result=driver_pb2.ExitResult(exit_code=code))

    @grpc_errors
    def ExecTaskStreaming(self, request_iterator: Iterator[driver_pb2.ExecTaskStreamingRequest],
                          context: grpc.ServicerContext) -> Iterator[driver_pb2.ExecTaskStreamingResponse]:
        first = next(request_iterator, None)
        if first is None or not first.HasField("setup"):
            raise InvalidArgument("exec: the first message must be setup")
        handle = self._running(first.setup.task_id)
        if not first.setup.command:
            raise InvalidArgument("exec: command is required")
        try:
            yield from stream_exec(handle.container, first.setup, request_iterator, context.is_active)
        except errors.ContainerdError as exc:
            raise FailedPrecondition(f"exec {list(first.setup.command)!r} failed: {exc}") from None
