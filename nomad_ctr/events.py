"""EventStream: one containerd event subscription, iterated in the caller's thread.

The stream is an iterator of Event. It ends (StopIteration) once close() is called, from
any thread; a blocked iteration returns promptly because close() cancels the bridge op
it waits under. If containerd drops the stream, iteration raises errors.Unavailable:
subscribe again (events in the gap are lost; re-check state with Container.status()).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nomad_ctr import errors
from nomad_ctr._invalid import invalid
from nomad_ctr.client import bridge, check_timeout
from nomad_ctr.types import Event

if TYPE_CHECKING:
    from nomad_ctr.client import Client

__all__ = ["EventStream"]

_BATCH = 64


class EventStream(Iterator[Event]):
    def __init__(
        self, client: Client, topics: Iterable[str] | None, *, poll_interval: float = 1.0
    ) -> None:
        topic_list = _check_topics(topics)
        self._poll = check_timeout(poll_interval, "poll_interval") or 1.0
        self._client = client
        self._lock = threading.Lock()
        self._buffer: collections.deque[Event] = collections.deque()
        self._closed = False
        self._busy = 0  # threads inside events.next
        req: dict[str, Any] = {}
        if topic_list:
            req["topics"] = topic_list
        resp = client._call("events.subscribe", req)
        b = bridge()
        self._sub = b.Handle(int(resp["subscription"]), "subscription")
        try:
            self._op = b.Op()
        except BaseException:
            self._sub.close()
            raise

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        while True:
            event = self.get(None)
            if event is not None:
                return event
            if self._closed:
                raise StopIteration

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None if none came within `timeout` or the stream is closed."""
        timeout = check_timeout(timeout)
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._buffer:
                    return self._buffer.popleft()
                if self._closed:
                    return None
                self._busy += 1
            try:
                left = self._poll if end is None else end - time.monotonic()
                if left > 0:
                    self._fetch(min(self._poll, left))
            finally:
                with self._lock:
                    self._busy -= 1
                    if self._closed and not self._busy:
                        self._release()
            if end is not None and time.monotonic() >= end and not self._buffer:
                return None

    def _fetch(self, wait: float) -> bool:
        if self._sub.closed:
            return False
        try:
            resp = bridge().call(
                "events.next",
                {"subscription": self._sub.value, "max": _BATCH},
                timeout=wait,
                op=self._op,
            )
        except (errors.Timeout, errors.Cancelled):
            return False
        except errors.ContainerdError:
            if self._closed:
                return False
            raise
        events = [Event.from_json(d) for d in resp.get("events") or ()]
        with self._lock:
            self._buffer.extend(events)
        if resp.get("error") and not events:
            raise errors.Unavailable(f"event stream broke: {resp['error']}")
        return bool(events)

    def close(self) -> None:
        """End the stream; safe from any thread and more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._busy:
                self._op.cancel()  # the iterating thread releases once it returns
            else:
                self._release()

    def _release(self) -> None:
        # Called with the lock held; Handle.close() is idempotent.
        self._sub.close()
        self._op.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_topics(topics: Iterable[str] | None) -> list[str]:
    if topics is None:
        return []
    if isinstance(topics, str):
        raise invalid("topics", topics, "must be a list of topics like '/tasks/exit'")
    out = []
    for i, topic in enumerate(topics):
        if not isinstance(topic, str) or not topic.startswith("/"):
            raise invalid(f"topics[{i}]", topic, "a topic starts with '/', e.g. '/tasks/exit'")
        out.append(topic)
    return out
