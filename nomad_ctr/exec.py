"""ExecProcess: a process started inside a running container, with streamed I/O."""

from __future__ import annotations

import base64
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nomad_ctr import errors
from nomad_ctr.client import bridge, check_timeout
from nomad_ctr.signals import SignalLike, parse_signal
from nomad_ctr.types import ExecOutput

if TYPE_CHECKING:
    from nomad_ctr.client import Client

__all__ = ["ExecProcess"]

# exec.read waits at most this long per bridge call when the caller gives no timeout.
_READ_SLICE = 1.0
# After close() kills a still-running process, how long to wait for it to go.
_KILL_GRACE = 5.0


class ExecProcess:
    """Returned by Container.exec_stream(); use it as a context manager.

    read() gives output as it comes and, once the process has exited and its output is
    drained, `exited=True` with the exit code. wait() returns the exit code; close()
    kills a process still running and releases its handle.
    """

    def __init__(self, client: Client, container_id: str, exec_id: str, handle: Any, pid: int):
        self._client = client
        self.container_id = container_id
        self.exec_id = exec_id
        self.pid = pid
        self._handle = handle  # a _bridge.Handle
        self._lock = threading.Lock()
        self._exit_code: int | None = None
        self._drained = False  # read() has seen the exit and the end of the output
        self._waited = False  # exec.wait returned: containerd has deleted the process

    def __repr__(self) -> str:
        return f"<ExecProcess {self.container_id}/{self.exec_id} pid={self.pid}>"

    def _require(self) -> int:
        if self._handle.closed:
            raise errors.FailedPrecondition(f"exec {self.exec_id} is closed")
        return int(self._handle.value)

    def _call(self, method: str, req: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        req = {"exec": self._require(), **req}
        resp: dict[str, Any] = bridge().call(method, req, timeout=timeout)
        return resp

    @property
    def exit_code(self) -> int | None:
        """The exit code once known (after read() saw the exit, or wait())."""
        return self._exit_code

    def write(self, data: bytes, *, timeout: float | None = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise errors.InvalidArgument(f"data={type(data).__name__}: must be bytes")
        payload = base64.b64encode(bytes(data)).decode("ascii")
        self._call("exec.write", {"data": payload}, self._t(timeout))

    def close_stdin(self, *, timeout: float | None = None) -> None:
        self._call("exec.close_stdin", {}, self._t(timeout))

    def read(self, timeout: float | None = None, *, max_bytes: int | None = None) -> ExecOutput:
        """Output that arrived within `timeout` seconds (possibly none).

        None waits until there is output or the process exits.
        """
        timeout = check_timeout(timeout)
        if self._drained:
            return ExecOutput(b"", b"", True, self._exit_code)
        req: dict[str, Any] = {}
        if max_bytes is not None:
            req["max_bytes"] = int(max_bytes)
        while True:
            slice_ = _READ_SLICE if timeout is None else timeout
            try:
                resp = self._call("exec.read", req, slice_)
            except errors.Timeout:
                resp = {}
            out = _parse_read(resp)
            if out.exited:
                self._drained = True
                self._exit_code = out.exit_code
            if out.stdout or out.stderr or out.exited or timeout is not None:
                return out

    def resize(self, width: int, height: int, *, timeout: float | None = None) -> None:
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise errors.InvalidArgument(f"{name}={value!r}: must be 1..65535")
        self._call("exec.resize", {"width": width, "height": height}, self._t(timeout))

    def kill(self, signal: SignalLike = "SIGTERM", *, timeout: float | None = None) -> None:
        self._call("exec.kill", {"signal": parse_signal(signal)}, self._t(timeout))

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit and return its exit code (errors.Timeout)."""
        if self._waited and self._exit_code is not None:
            return self._exit_code
        timeout = check_timeout(timeout)
        if timeout is None:
            # Wait in slices so the calling thread gets back to Python now and then
            # (Ctrl-C, pytest-timeout); a finished process answers at once.
            while True:
                try:
                    resp = self._call("exec.wait", {}, _READ_SLICE)
                    break
                except errors.Timeout:
                    continue
        else:
            resp = self._call("exec.wait", {}, timeout)
        self._exit_code = int(resp.get("exit_code") or 0)
        self._waited = True
        return self._exit_code

    def close(self) -> None:
        """Kill the process if it still runs, reap it and release the handle. Idempotent."""
        with self._lock:
            if self._handle.closed:
                return
            try:
                if not self._waited:
                    self._reap()
            finally:
                self._handle.close()

    def _reap(self) -> None:
        try:
            if self._exit_code is None:
                self.kill("SIGKILL")
            self.wait(_KILL_GRACE)
        except errors.ContainerdError:
            pass  # already gone; the handle release frees what is left

    def _t(self, timeout: float | None) -> float | None:
        return self._client.timeout if timeout is None else check_timeout(timeout)

    def __enter__(self) -> ExecProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _parse_read(resp: dict[str, Any]) -> ExecOutput:
    stdout = base64.b64decode(resp.get("stdout") or "")
    stderr = base64.b64decode(resp.get("stderr") or "")
    # "exited" is only reported once the output is drained too, so a loop that stops on
    # it loses nothing.
    exited = bool(resp.get("exited")) and bool(resp.get("stdout_eof", True)) and bool(
        resp.get("stderr_eof", True)
    )
    code = resp.get("exit_code")
    return ExecOutput(
        stdout=stdout,
        stderr=stderr,
        exited=exited,
        exit_code=int(code) if exited and code is not None else None,
    )
