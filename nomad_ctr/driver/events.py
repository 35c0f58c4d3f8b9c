"""TaskEvents: driver events (pull progress, ...) fanned out to every open stream.

Nomad keeps one TaskEvents stream per plugin instance and routes each event by
alloc_id + task_name; an event sent while no stream is open is dropped (logged).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping

from google.protobuf import timestamp_pb2

from nomad_ctr._pb import driver_pb2

__all__ = ["TaskEvents"]

log = logging.getLogger("nomad_ctr.driver.events")

_QUEUE_MAX = 1000  # per stream; a stuck consumer loses events rather than memory


class TaskEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.Queue[driver_pb2.DriverTaskEvent]] = []
        self._closed = threading.Event()

    def emit(
        self,
        *,
        task_id: str,
        alloc_id: str,
        task_name: str,
        message: str,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        ts = timestamp_pb2.Timestamp()
        ts.GetCurrentTime()
        event = driver_pb2.DriverTaskEvent(
            task_id=task_id, alloc_id=alloc_id, task_name=task_name, timestamp=ts,
            message=message, annotations=dict(annotations or {}),
        )
        with self._lock:
            queues = list(self._queues)
        if not queues:
            log.debug("task event with no listener", extra={"task_id": task_id, "event": message})
        for q in queues:
            try:
                q.put_nowait(event)
            except queue.Full:
                log.warning("task event dropped (slow consumer)", extra={"task_id": task_id})

    def stream(self, is_active: Callable[[], bool], poll: float = 0.5) -> Iterator[driver_pb2.DriverTaskEvent]:
        """Events until the client goes away or close() is called."""
        q: queue.Queue[driver_pb2.DriverTaskEvent] = queue.Queue(_QUEUE_MAX)
        with self._lock:
            self._queues.append(q)
        try:
            while is_active() and not self._closed.is_set():
                try:
                    yield q.get(timeout=poll)
                except queue.Empty:
                    continue
        finally:
            with self._lock:
                self._queues.remove(q)

    def close(self) -> None:
        self._closed.set()
