"""What a task handle's `driver_state` carries, and the in-memory task store.

driver_state is opaque msgpack that Nomad persists and gives back in RecoverTask,
often without the job's task config (fact sheet §6.6). It therefore holds everything
needed to find the task again, and never a secret.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import msgpack

if TYPE_CHECKING:
    from nomad_ctr.driver.handle import TaskHandle

__all__ = ["STATE_VERSION", "DriverState", "StateError", "TaskStore", "decode_state", "encode_state"]

STATE_VERSION = 1


class StateError(ValueError):
    """driver_state bytes that we cannot use."""


@dataclass(frozen=True)
class DriverState:
    task_id: str
    container_id: str
    namespace: str  # containerd namespace the container lives in
    alloc_id: str = ""
    task_name: str = ""
    image: str = ""
    started_at_ns: int = 0  # unix ns
    stdout_path: str = ""
    stderr_path: str = ""
    etc_dir: str = ""  # generated /etc files (hosts, resolv.conf), removed on destroy
    net_id: str = ""  # the driver's own CNI network (nomad_ctr.net attachment id), torn down on destroy
    own_netns: str = ""  # a loopback-only netns the driver made (NONE isolation), deleted on destroy


def encode_state(state: DriverState) -> bytes:
    return msgpack.packb({"version": STATE_VERSION, **asdict(state)}, use_bin_type=True)


def decode_state(data: bytes) -> DriverState:
    if not data:
        raise StateError("driver_state is empty (the handle was not made by this driver)")
    try:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=True, max_bin_len=1 << 20)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
        raise StateError(f"driver_state is not valid msgpack: {exc}") from None
    if not isinstance(doc, dict):
        raise StateError("driver_state is not a map")
    version = doc.get("version")
    if version != STATE_VERSION:
        raise StateError(f"driver_state version {version!r} is not supported (want {STATE_VERSION})")
    values: dict[str, Any] = {}
    for f in fields(DriverState):
        if f.name not in doc:
            if f.name in ("task_id", "container_id", "namespace"):
                raise StateError(f"driver_state lacks {f.name}")
            continue
        value = doc[f.name]
        want = int if f.name == "started_at_ns" else str
        if not isinstance(value, want) or isinstance(value, bool):
            raise StateError(f"driver_state.{f.name} has the wrong type")
        values[f.name] = value
    state = DriverState(**values)
    if not state.task_id or not state.container_id or not state.namespace:
        raise StateError("driver_state has an empty task_id, container_id or namespace")
    return state


class TaskStore:
    """Tracked tasks by Nomad task id, plus an index by container id (for events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_task: dict[str, TaskHandle] = {}
        self._reserved: set[str] = set()

    def reserve(self, task_id: str) -> bool:
        """Claim `task_id` for a StartTask in progress; False if taken."""
        with self._lock:
            if task_id in self._by_task or task_id in self._reserved:
                return False
            self._reserved.add(task_id)
            return True

    def release(self, task_id: str) -> None:
        with self._lock:
            self._reserved.discard(task_id)

    def add(self, handle: TaskHandle) -> bool:
        """Track `handle`; False if its task id is tracked already (reservations count as free)."""
        with self._lock:
            self._reserved.discard(handle.task_id)
            if handle.task_id in self._by_task:
                return False
            self._by_task[handle.task_id] = handle
            return True

    def get(self, task_id: str) -> TaskHandle | None:
        with self._lock:
            return self._by_task.get(task_id)

    def remove(self, task_id: str) -> TaskHandle | None:
        with self._lock:
            return self._by_task.pop(task_id, None)

    def by_container(self, container_id: str) -> list[TaskHandle]:
        with self._lock:
            return [h for h in self._by_task.values() if h.container_id == container_id]

    def all(self) -> list[TaskHandle]:
        with self._lock:
            return list(self._by_task.values())

    def __iter__(self) -> Iterator[TaskHandle]:
        return iter(self.all())

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_task)
