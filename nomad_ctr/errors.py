"""Exceptions raised by nomad_ctr, shaped after containerd's errdefs classes.

The Go bridge reports a status name (``NOT_FOUND``, ``TIMEOUT``, ...) and a message; this
module turns that pair into the most specific class. ``BridgeError`` is for faults of the
bridge itself (cannot load, version mismatch, used after fork).
"""

from __future__ import annotations


class ContainerdError(Exception):
    """Root of every nomad_ctr error: ``code`` is the status name, ``message`` the text."""

    code: str = "UNKNOWN"

    def __init__(self, message: str, *, code: str | None = None, method: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.method = method

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class Unknown(ContainerdError):
    code = "UNKNOWN"


class NotFound(ContainerdError):
    code = "NOT_FOUND"


class ImageNotFound(NotFound):
    pass


class ContainerNotFound(NotFound):
    pass


class TaskNotFound(NotFound):
    pass


class AlreadyExists(ContainerdError):
    code = "ALREADY_EXISTS"


class InvalidArgument(ContainerdError, ValueError):
    code = "INVALID_ARGUMENT"


class FailedPrecondition(ContainerdError):
    code = "FAILED_PRECONDITION"


class Conflict(FailedPrecondition):
    """The object changed or is in use (errdefs Conflict/Aborted)."""

    code = "CONFLICT"


class Unavailable(ContainerdError):
    code = "UNAVAILABLE"


class PermissionDenied(ContainerdError):
    code = "PERMISSION_DENIED"


class Unauthenticated(ContainerdError):
    code = "UNAUTHENTICATED"


class Timeout(ContainerdError, TimeoutError):
    code = "TIMEOUT"


class Cancelled(ContainerdError):
    code = "CANCELLED"


class NotImplementedByServer(ContainerdError):
    code = "NOT_IMPLEMENTED"


class ResourceExhausted(ContainerdError):
    code = "RESOURCE_EXHAUSTED"


class Internal(ContainerdError):
    code = "INTERNAL"


class BridgePanic(Internal):
    """A Go panic inside the bridge, recovered; the process is fine, the call failed."""

    code = "PANIC"


class BridgeError(ContainerdError, RuntimeError):
    """The Go bridge cannot be used: not built, wrong version, or used after fork()."""

    code = "BRIDGE"


_BY_CODE: dict[str, type[ContainerdError]] = {
    cls.code: cls
    for cls in (
        Unknown, NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Conflict,
        Unavailable, PermissionDenied, Unauthenticated, Timeout, Cancelled,
        NotImplementedByServer, ResourceExhausted, Internal, BridgePanic,
    )
}

# The bridge starts NOT_FOUND messages with the kind of object that is missing.
_NOT_FOUND_BY_PREFIX: tuple[tuple[str, type[NotFound]], ...] = (
    ("image ", ImageNotFound),
    ("container ", ContainerNotFound),
    ("task ", TaskNotFound),
)
_NOT_FOUND_BY_METHOD: tuple[tuple[str, type[NotFound]], ...] = (
    ("images.", ImageNotFound),
    ("containers.", ContainerNotFound),
    ("tasks.", TaskNotFound),
)


def not_found_class(method: str | None, message: str) -> type[NotFound]:
    """The most specific NotFound class for a failed ``method`` and its message."""
    for prefix, cls in _NOT_FOUND_BY_PREFIX:
        if message.startswith(prefix):
            return cls
    for prefix, cls in _NOT_FOUND_BY_METHOD:
        if method is not None and method.startswith(prefix):
            return cls
    return NotFound


def from_status(code: str, message: str, method: str | None = None) -> ContainerdError:
    """Build the exception for a bridge status name and message."""
    cls: type[ContainerdError] = _BY_CODE.get(code, Unknown)
    if cls is NotFound:
        cls = not_found_class(method, message)
    return cls(message, code=code, method=method)


__all__ = [
    "AlreadyExists",
    "BridgeError",
    "BridgePanic",
    "Cancelled",
    "Conflict",
    "ContainerNotFound",
    "ContainerdError",
    "FailedPrecondition",
    "ImageNotFound",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "NotImplementedByServer",
    "PermissionDenied",
    "ResourceExhausted",
    "TaskNotFound",
    "Timeout",
    "Unauthenticated",
    "Unavailable",
    "Unknown",
    "from_status",
    "not_found_class",
]
