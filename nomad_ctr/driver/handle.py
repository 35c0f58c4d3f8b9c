"""One tracked task at run time: its container, how it ended, and who waits for that.

Exit results come from the shared event thread (exits.py) or from a status check; the
first one recorded wins, so every WaitTask sees the same result. WaitTask blocks on
`exited` (a threading.Event), never on a thread of its own.
"""

from __future__ import annotations

import logging
import signal as _signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from nomad_ctr import Container
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.state import DriverState

__all__ = ["OOM_GRACE", "ExitInfo", "TaskHandle"]

log = logging.getLogger("nomad_ctr.driver.handle")

# An exit code of 137 (SIGKILL) whose cgroup OOM counter could not be read: an OOM event
# may be just behind the exit event in the stream, so the result waits this long for it.
# A counter that was read decides at once: the kernel counts an OOM kill before the
# killed process exits.
OOM_GRACE = 1.0


@dataclass(frozen=True)
class ExitInfo:
    exit_code: int
    signal: int = 0
    oom_killed: bool = False
    err: str = ""  # non-empty: the task failed in a way an exit code cannot say


def signal_of(exit_code: int) -> int:
    """The signal behind a shell-style exit code 128+n, else 0."""
    if 128 < exit_code < 128 + 65:
        try:
            return int(_signal.Signals(exit_code - 128))
        except ValueError:
            return 0
    return 0


class TaskHandle:
    def __init__(self, state: DriverState, container: Container, *, started_at: datetime | None = None) -> None:
        self.state = state
        self.container = container
        self.started_at = started_at or (
            datetime.fromtimestamp(state.started_at_ns / 1e9, timezone.utc)
            if state.started_at_ns
            else datetime.now(timezone.utc)
        )
        self.completed_at: datetime | None = None
        self.exited = threading.Event()
        self._lock = threading.Lock()
        self._result: ExitInfo | None = None
        self._oom_seen = False
        self._pending: tuple[int, datetime | None] | None = None  # 137 waiting for OOM
        self.destroyed = False
        self.network: driver_pb2.NetworkOverride | None = None  # the driver's own network, if any

    @property
    def task_id(self) -> str:
        return self.state.task_id

    @property
    def container_id(self) -> str:
        return self.state.container_id

    @property
    def result(self) -> ExitInfo | None:
        with self._lock:
            return self._result

    def is_running(self) -> bool:
        return not self.exited.is_set()

    # ---- fed by the event thread / status checks ---------------------------------------

    def on_oom(self) -> None:
        with self._lock:
            self._oom_seen = True
            pending = self._pending
        if pending is not None:
            self._finish(*pending)

    def on_exit(self, exit_code: int, exited_at: datetime | None, *, oom_counter: bool | None = None) -> None:
        """Record the task's exit (idempotent: the first record wins). oom_counter: the
        task cgroup's OOM-kill counter was non-zero (True), zero (False) or unreadable (None)."""
        with self._lock:
            if self._result is not None or self._pending is not None:
                return
            if exit_code == 137 and oom_counter is None and not self._oom_seen:
                self._pending = (exit_code, exited_at)
                timer = threading.Timer(OOM_GRACE, self._finish, (exit_code, exited_at))
                timer.daemon = True
                timer.start()
                return
            if oom_counter:
                self._oom_seen = True
        self._finish(exit_code, exited_at)

    def fail(self, message: str, exit_code: int = 255) -> None:
        """The task is gone without an exit status we can read."""
        with self._lock:
            if self._result is not None:
                return
            self._result = ExitInfo(exit_code=exit_code, err=message)
            self.completed_at = datetime.now(timezone.utc)
        self.exited.set()

    def _finish(self, exit_code: int, exited_at: datetime | None) -> None:
        with self._lock:
            if self._result is not None:
                return
            self._pending = None
            self._result = ExitInfo(
                exit_code=exit_code, signal=signal_of(exit_code), oom_killed=self._oom_seen
            )
            self.completed_at = exited_at or datetime.now(timezone.utc)
        log.info(
            "task exited",
            extra={"task_id": self.task_id, "container_id": self.container_id,
                   "exit_code": exit_code, "oom_killed": self._result.oom_killed},
        )
        self.exited.set()

    def wait(self, timeout: float | None) -> ExitInfo | None:
        """The result once the task exited within `timeout`, else None."""
        if self.exited.wait(timeout):
            return self.result
        return None

    def wait_while(self, is_active: Callable[[], bool], slice_: float = 0.5) -> ExitInfo | None:
        """Block until exit, or until is_active() turns False (then None)."""
        while True:
            if self.exited.wait(slice_):
                return self.result
            if not is_active():
                return None

    def uptime(self) -> float:
        return time.time() - self.started_at.timestamp()
