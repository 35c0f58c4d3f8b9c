"""One event thread for all tasks: /tasks/exit and /tasks/oom dispatched to handles.

A broken stream (containerd restarting) is not an exit: the thread subscribes again
and reconciles every tracked task by asking containerd for its status, which the shim
keeps even for a task that exited while containerd was down. The same reconciliation
runs every RECONCILE_EVERY seconds as a safety net for lost events.
"""

from __future__ import annotations

import logging
import threading
import time

from nomad_ctr import TaskState, errors
from nomad_ctr.driver.connection import Connection
from nomad_ctr.driver.handle import TaskHandle
from nomad_ctr.driver.state import TaskStore

__all__ = ["ExitWatcher", "check_task", "read_oom_counter"]

log = logging.getLogger("nomad_ctr.driver.exits")

TOPICS = ("/tasks/exit", "/tasks/oom")
RECONCILE_EVERY = 10.0
RETRY_MIN, RETRY_MAX = 0.5, 5.0


def read_oom_counter(handle: TaskHandle) -> bool | None:
    """Whether the kernel OOM-killed a process of this task (its cgroup's counter);
    None when the counter cannot be read (the cgroup is gone, containerd is away)."""
    try:
        return bool(handle.container.stats(timeout=3.0).memory.oom_events)
    except errors.ContainerdError:
        return None


def check_task(handle: TaskHandle) -> None:
    """Ask containerd whether the task still runs and record its exit if not.

    errors.Unavailable / Timeout propagate: containerd being away says nothing."""
    if handle.exited.is_set():
        return
    try:
        status = handle.container.status()
    except (errors.TaskNotFound, errors.ContainerNotFound, errors.NotFound):
        if not handle.exited.is_set():
            handle.fail("the container's task is gone (deleted outside the driver); exit status unknown")
        return
    if status.state is TaskState.STOPPED:
        code = status.exit_code if status.exit_code is not None else 255
        handle.on_exit(code, status.exited_at, oom_counter=read_oom_counter(handle) if code == 137 else False)


class ExitWatcher:
    def __init__(self, connection: Connection, store: TaskStore) -> None:
        self._conn = connection
        self._store = store
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._subscribed = threading.Event()

    def ensure_running(self, timeout: float = 10.0) -> bool:
        """Start the thread if needed; True once a subscription is live."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="exit-events", daemon=True)
                self._thread.start()
        return self._subscribed.wait(timeout)

    def close(self) -> None:
        self._stop.set()

    # ---- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        delay = RETRY_MIN
        while not self._stop.is_set():
            try:
                stream = self._conn.client().events(TOPICS)
            except Exception as exc:  # noqa: BLE001 - containerd down, not configured, ...
                log.debug("event subscription failed: %s", exc)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_MIN
            try:
                self._subscribed.set()
                self.reconcile()  # whatever happened while we were not listening
                last = time.monotonic()
                while not self._stop.is_set():
                    event = stream.get(1.0)
                    if event is not None:
                        self._dispatch(event)
                    if time.monotonic() - last >= RECONCILE_EVERY:
                        self.reconcile()
                        last = time.monotonic()
            except errors.ContainerdError as exc:
                if not self._stop.is_set():
                    log.warning("containerd event stream broke; subscribing again: %s", exc)
            except Exception:
                log.exception("event thread error; subscribing again")
            finally:
                self._subscribed.clear()
                stream.close()
            self._stop.wait(RETRY_MIN)

    def _dispatch(self, event) -> None:  # type: ignore[no-untyped-def]
        handles = self._store.by_container(event.container_id)
        if not handles:
            return
        if event.topic == "/tasks/oom":
            for h in handles:
                h.on_oom()
        elif event.topic == "/tasks/exit":
            if event.id and event.id != event.container_id:
                return  # an exec'd process, not the task
            code = event.exit_code if event.exit_code is not None else 255
            for h in handles:
                if h.exited.is_set():
                    continue
                oom = read_oom_counter(h) if code == 137 else False
                h.on_exit(code, event.exited_at, oom_counter=oom)

    def reconcile(self) -> None:
        for handle in self._store.all():
            if handle.exited.is_set() or handle.destroyed:
                continue
            try:
                check_task(handle)
            except (errors.Unavailable, errors.Timeout):
                return  # containerd is away; try again later
            except errors.ContainerdError as exc:
                log.warning("status check failed", extra={"task_id": handle.task_id, "error": str(exc)})
