"""gRPC status helpers for the plugin's servicers (fact sheet §7).

Nomad only sees a status code and message, plus, for StartTask, an optional
RecoverableError detail that lets its restart policy retry. Rules:
- never UNAVAILABLE or CANCELLED for business errors (the client reads them as a crash);
- bad input -> INVALID_ARGUMENT, non-recoverable, one line, no traceback;
- unknown task -> NOT_FOUND "task not found for given id";
- transient failures (registry, containerd, disk) -> FAILED_PRECONDITION + recoverable.

Servicer code can either call the abort_* helpers with its context, or raise a
DriverError and wrap the method with @grpc_errors.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from nomad_ctr._pb import recoverable_error_pb2

__all__ = [
    "RECOVERABLE_TYPE_URL",
    "TASK_NOT_FOUND",
    "DriverError",
    "FailedPrecondition",
    "InvalidArgument",
    "Recoverable",
    "TaskNotFound",
    "abort",
    "abort_failed_precondition",
    "abort_invalid",
    "abort_not_found",
    "abort_recoverable",
    "grpc_errors",
    "status_for",
]

TASK_NOT_FOUND = "task not found for given id"
RECOVERABLE_TYPE_URL = (
    "type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError"
)
_MAX_MESSAGE = 2048

log = logging.getLogger("nomad_ctr.driver.errors")


class DriverError(Exception):
    """An error meant for Nomad: its text becomes the status message."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    recoverable: bool | None = None  # None: no RecoverableError detail

    def __init__(self, message: str, *, recoverable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if recoverable is not None:
            self.recoverable = recoverable


class InvalidArgument(DriverError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class TaskNotFound(DriverError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, message: str = TASK_NOT_FOUND) -> None:
        super().__init__(message)


class FailedPrecondition(DriverError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Recoverable(DriverError):
    """A transient failure: Nomad's restart policy may retry the task."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    recoverable = True


def _one_line(message: str) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def status_for(
    code: grpc.StatusCode, message: str, recoverable: bool | None = None
) -> grpc.Status:
    """A grpc.Status carrying google.rpc.Status details (trailer grpc-status-details-bin).

    With `recoverable` set, details[0] is a RecoverableError, as Go plugins send it."""
    msg = _one_line(message)
    detail: list[any_pb2.Any] = []
    if recoverable is not None:
        packed = any_pb2.Any()
        packed.Pack(
            recoverable_error_pb2.RecoverableError(recoverable=recoverable),
            type_url_prefix="type.googleapis.com/",
        )
        detail.append(packed)
    return rpc_status.to_status(
        status_pb2.Status(code=getattr(code_pb2, code.name), message=msg, details=detail)
    )


def abort(
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    recoverable: bool | None = None,
) -> NoReturn:
    if recoverable is None:
        context.abort(code, _one_line(message))
    context.abort_with_status(status_for(code, message, recoverable))
    raise AssertionError("unreachable")  # pragma: no cover - abort raises


def abort_invalid(context: grpc.ServicerContext, message: str) -> NoReturn:
    abort(context, grpc.StatusCode.INVALID_ARGUMENT, message)


def abort_not_found(context: grpc.ServicerContext, message: str = TASK_NOT_FOUND) -> NoReturn:
    abort(context, grpc.StatusCode.NOT_FOUND, message)


def abort_failed_precondition(
    context: grpc.ServicerContext, message: str, recoverable: bool | None = None
) -> NoReturn:
    abort(context, grpc.StatusCode.FAILED_PRECONDITION, message, recoverable)


def abort_recoverable(context: grpc.ServicerContext, message: str) -> NoReturn:
    abort(context, grpc.StatusCode.FAILED_PRECONDITION, message, True)


F = TypeVar("F", bound=Callable[..., Any])


def _already_aborted(context: grpc.ServicerContext) -> bool:
    # context.abort raises a bare Exception; do not turn it into INTERNAL
    try:
        return context.code() is not None  # type: ignore[attr-defined]
    except Exception:
        return False


def _to_status(exc: BaseException, context: grpc.ServicerContext, method: str) -> NoReturn:
    if isinstance(exc, DriverError):
        abort(context, exc.code, exc.message, exc.recoverable)
    from nomad_ctr.driver.config_values import ConfigError

    if isinstance(exc, ConfigError):
        abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    log.error("unexpected error in %s: %s", method, exc, exc_info=exc)
    abort(context, grpc.StatusCode.INTERNAL, f"{method}: internal error: {exc}")


def grpc_errors(fn: F) -> F:
    """Map DriverError/ConfigError (and stray exceptions, as INTERNAL) of a servicer
    method `(self, request, context)` to gRPC statuses. Works for streaming methods."""
    name = fn.__name__

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                yield from fn(self, request, context)
            except Exception as exc:
                if _already_aborted(context):
                    raise
                _to_status(exc, context, name)

        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except Exception as exc:
            if _already_aborted(context):
                raise
            _to_status(exc, context, name)

    return wrapper  # type: ignore[return-value]
