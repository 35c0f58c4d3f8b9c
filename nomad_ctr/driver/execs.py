"""ExecTask and ExecTaskStreaming on top of Container.exec_stream.

Streaming: the client's messages (stdin data/close, tty_size, heartbeats) are pumped
by a helper thread while the RPC thread forwards output; when the client goes away
the exec'd process is killed. A resize goes to the exec'd process, not the task.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from nomad_ctr import Container, ExecProcess, errors
from nomad_ctr._pb import driver_pb2

__all__ = ["FRAME", "ExecTimeout", "run_exec", "stream_exec"]

log = logging.getLogger("nomad_ctr.driver.execs")

FRAME = 1024  # output chunk size, as Nomad's Go helpers use
_Resp = driver_pb2.ExecTaskStreamingResponse
_IO = driver_pb2.ExecTaskStreamingIOOperation


class ExecTimeout(Exception):
    def __init__(self, timeout: float, stdout: bytes, stderr: bytes) -> None:
        super().__init__(f"exec timed out after {timeout:g}s; the process was killed")
        self.stdout, self.stderr = stdout, stderr


def run_exec(container: Container, argv: list[str], timeout: float | None) -> tuple[bytes, bytes, int]:
    """Run argv in the task; (stdout, stderr, exit code). ExecTimeout kills it."""
    out, err = bytearray(), bytearray()
    end = None if not timeout else time.monotonic() + timeout
    with container.exec_stream(argv) as proc:
        while True:
            left = 1.0 if end is None else end - time.monotonic()
            if left <= 0:
                proc.kill("SIGKILL")
                raise ExecTimeout(timeout or 0.0, bytes(out), bytes(err))
            chunk = proc.read(min(1.0, left))
            out += chunk.stdout
            err += chunk.stderr
            if chunk.exited:
                code = chunk.exit_code if chunk.exit_code is not None else proc.wait(5.0)
                return bytes(out), bytes(err), int(code)


def _frames(data: bytes, stderr: bool) -> Iterator[driver_pb2.ExecTaskStreamingResponse]:
    for i in range(0, len(data), FRAME):
        io = _IO(data=data[i : i + FRAME])
        yield _Resp(stderr=io) if stderr else _Resp(stdout=io)


def _pump(requests: Iterator[driver_pb2.ExecTaskStreamingRequest], proc: ExecProcess,
          done: threading.Event) -> None:
    try:
        for req in requests:
            if done.is_set():
                return
            if req.HasField("stdin"):
                if req.stdin.data:
                    proc.write(req.stdin.data)
                if req.stdin.close:
                    proc.close_stdin()
            elif req.HasField("tty_size") and req.tty_size.width > 0 and req.tty_size.height > 0:
                proc.resize(req.tty_size.width, req.tty_size.height)
            # anything else is a heartbeat
    except Exception as exc:  # noqa: BLE001 - the call ended or the process is gone
        log.debug("exec input pump ended: %s", exc)


def stream_exec(container: Container, setup: driver_pb2.ExecTaskStreamingRequest.Setup,
                requests: Iterator[driver_pb2.ExecTaskStreamingRequest],
                is_active: Callable[[], bool]) -> Iterator[driver_pb2.ExecTaskStreamingResponse]:
    proc = container.exec_stream(list(setup.command), tty=setup.tty, stdin=True)
    done = threading.Event()
    pump = threading.Thread(target=_pump, args=(requests, proc, done), name="exec-stdin", daemon=True)
    pump.start()
    try:
        while True:
            if not is_active():
                log.info("exec client went away; killing the process", extra={"exec_id": proc.exec_id})
                return
            chunk = proc.read(0.25)
            yield from _frames(chunk.stdout, False)
            yield from _frames(chunk.stderr, True)
            if chunk.exited:
                code = chunk.exit_code if chunk.exit_code is not None else proc.wait(5.0)
                yield _Resp(stdout=_IO(close=True))
                yield _Resp(stderr=_IO(close=True))
                yield _Resp(exited=True, result=driver_pb2.ExitResult(exit_code=int(code)))
                return
    finally:
        done.set()
        try:
            proc.close()  # kills the process if it still runs
        except errors.ContainerdError:
            pass
