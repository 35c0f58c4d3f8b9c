"""gb_call and handles: encode the request, call, copy and free the result, raise by status."""

from __future__ import annotations

import json
import math
import threading
import weakref
from typing import TYPE_CHECKING, Any

from nomad_ctr import errors

from . import _loader
from ._loader import ffi

if TYPE_CHECKING:
    from typing_extensions import Self

_STATUS_NAMES = {
    0: "OK", 1: "UNKNOWN", 2: "INVALID_ARGUMENT", 3: "NOT_FOUND", 4: "ALREADY_EXISTS",
    5: "FAILED_PRECONDITION", 6: "UNAVAILABLE", 7: "PERMISSION_DENIED", 8: "UNAUTHENTICATED",
    9: "TIMEOUT", 10: "CANCELLED", 11: "NOT_IMPLEMENTED", 12: "RESOURCE_EXHAUSTED",
    13: "INTERNAL", 14: "PANIC", 15: "CONFLICT",
}


def status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, "UNKNOWN")


def timeout_ms(timeout: float | None) -> int:
    """Seconds to the bridge's milliseconds; None means no deadline (0)."""
    if timeout is None:
        return 0
    if math.isnan(timeout) or timeout < 0:
        raise errors.InvalidArgument(f"invalid timeout {timeout!r}: must be >= 0 seconds or None")
    return max(1, math.ceil(timeout * 1000))


def _take(out: Any, out_len: Any) -> bytes:
    """Copy the Go-owned result buffer (explicit length) and free it."""
    ptr = out[0]
    if ptr == ffi.NULL:
        return b""
    try:
        data: bytes = ffi.buffer(ptr, out_len[0])[:]
        return data
    finally:
        _loader.lib().gb_free(ptr)


def _raise_for(status: int, raw: bytes, method: str | None) -> None:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    code = body.get("code") or status_name(status)
    message = body.get("message") or f"{method or 'gobridge'} failed with status {code}"
    raise errors.from_status(code, message, method)


def call(method: str, request: dict[str, Any], *, timeout: float | None = None,
         op: Op | None = None) -> dict[str, Any]:
    """Run one bridge method; returns its JSON answer or raises the errors class for it."""
    lib = _loader.lib()
    m = method.encode()
    body = json.dumps(request, separators=(",", ":")).encode()
    out = ffi.new("uint8_t **")
    out_len = ffi.new("size_t *")
    op_id = op.value if op is not None else 0
    status = lib.gb_call(op_id, m, len(m), body, len(body), timeout_ms(timeout), out, out_len)
    raw = _take(out, out_len)
    if status != 0:
        _raise_for(status, raw, method)
    result: dict[str, Any] = json.loads(raw) if raw else {}
    return result


def _release_quietly(value: int) -> None:
    # Backstop only: never call into Go from a forked child or with no library loaded.
    if _loader.is_loaded() and _loader.is_usable():
        _loader.lib().gb_release(value)


class Handle:
    """A gobridge handle (client, exec, subscription, op). close() releases it once."""

    def __init__(self, value: int, kind: str = "handle") -> None:
        if not value:
            raise errors.BridgeError(f"gobridge returned an empty {kind} handle")
        self._value = value
        self.kind = kind
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _release_quietly, value)

    @property
    def value(self) -> int:
        if self._value == 0:
            raise errors.BridgeError(f"{self.kind} handle is closed")
        return self._value

    @property
    def closed(self) -> bool:
        return self._value == 0

    def close(self) -> None:
        with self._lock:
            value, self._value = self._value, 0
        if not value:
            return
        self._finalizer.detach()
        status = _loader.lib().gb_release(value)
        if status not in (0, 3):  # NOT_FOUND: already gone on the Go side
            raise errors.from_status(status_name(status), f"gb_release of {self.kind} failed")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else str(self._value)
        return f"<{type(self).__name__} {self.kind} {state}>"


class Op(Handle):
    """A cancellable operation: pass it to call(op=...), cancel() it from any thread and
    poll() its progress (Go never calls back into Python)."""

    def __init__(self) -> None:
        super().__init__(int(_loader.lib().gb_op_new()), "op")

    def cancel(self) -> None:
        status = _loader.lib().gb_op_cancel(self.value)
        if status != 0:
            raise errors.from_status(status_name(status), "gb_op_cancel failed")

    def poll(self, timeout: float | None = None) -> dict[str, Any]:
        """The latest progress, waiting up to ``timeout`` seconds for a change."""
        out = ffi.new("uint8_t **")
        out_len = ffi.new("size_t *")
        status = _loader.lib().gb_op_poll(self.value, timeout_ms(timeout), out, out_len)
        raw = _take(out, out_len)
        if status != 0:
            _raise_for(status, raw, "op.poll")
        progress: dict[str, Any] = json.loads(raw) if raw else {}
        return progress
