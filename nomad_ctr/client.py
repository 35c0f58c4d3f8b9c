"""Client: one containerd connection (through gobridge) bound to a namespace.

Timeouts: every method takes `timeout` in seconds and raises errors.Timeout (also a
TimeoutError) when it passes. For quick calls (get, list, create, start, kill, status,
delete, ...) None means the client's default `timeout`. For calls whose length depends on
the workload (images.pull, Container.wait, exec, containers.run) None means no deadline.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterable
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from nomad_ctr import errors
from nomad_ctr._invalid import invalid
from nomad_ctr.logs import state_dir as _state_dir
from nomad_ctr.types import Version

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_NAMESPACE", "Client"]

DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
DEFAULT_NAMESPACE = "default"
DEFAULT_TIMEOUT = 10.0
_CONNECT_SLACK = 2.0
_INTERRUPT_CHECK = 0.5  # seconds between checks for Ctrl-C during a long call

# containerd's identifier rule (namespaces, container ids): pkg/identifiers.
_IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$")
_MAX_IDENTIFIER = 76

# Sentinel: "use the client's default timeout".
DEFAULT: Any = object()


def bridge() -> ModuleType:
    """nomad_ctr._bridge, imported on first use so `import nomad_ctr` stays cheap."""
    from nomad_ctr import _bridge

    return _bridge


def check_identifier(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(field, value, "must be a non-empty string")
    if len(value) > _MAX_IDENTIFIER or not _IDENTIFIER_RE.match(value):
        raise invalid(
            field,
            value,
            f"letters and digits separated by single '.', '_' or '-', at most "
            f"{_MAX_IDENTIFIER} characters",
        )
    return value


def check_timeout(value: Any, field: str = "timeout") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise invalid(field, value, "must be a number of seconds or None")
    if value <= 0:
        raise invalid(field, value, "must be greater than zero")
    return float(value)


class _Connection:
    """A bridge client handle and its lifetime; the root Client owns it."""

    def __init__(self, address: str, namespace: str, timeout: float) -> None:
        self.address = address
        self.namespace = namespace
        b = bridge()
        # The dial timeout bounds the call; the call's own deadline is a backstop set a
        # little later so a dead address reports UNAVAILABLE rather than TIMEOUT.
        resp = b.call(
            "client.connect",
            {"address": address, "namespace": namespace, "timeout_ms": b.timeout_ms(timeout)},
            timeout=timeout + _CONNECT_SLACK,
        )
        self.handle = b.Handle(int(resp["client"]), "client")

    def require(self) -> int:
        if self.handle.closed:
            raise errors.FailedPrecondition("the client is closed")
        return int(self.handle.value)

    @property
    def closed(self) -> bool:
        return bool(self.handle.closed)

    def close(self) -> None:
        self.handle.close()


class _ViewConnection:
    """A namespace view's use of its root's connection: closing it ends only the view."""

    def __init__(self, root: _Connection) -> None:
        self._root = root
        self._closed = False

    def require(self) -> int:
        if self._closed:
            raise errors.FailedPrecondition("the client is closed")
        return self._root.require()

    @property
    def closed(self) -> bool:
        return self._closed or self._root.closed

    def close(self) -> None:
        self._closed = True


class Client:
    """A containerd client bound to one namespace; use it as a context manager.

    `with_namespace()` gives views on other namespaces; they are closed with the client.
    """

    def __init__(
        self,
        address: str | None = None,
        namespace: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        address = address or DEFAULT_ADDRESS
        if not isinstance(address, str):
            raise invalid("address", address, "must be a socket path")
        namespace = DEFAULT_NAMESPACE if namespace is None else namespace
        check_identifier(namespace, "namespace")
        checked = check_timeout(timeout)
        if checked is None:
            raise invalid("timeout", timeout, "the client's default timeout must be a number")
        self.address = address
        self.namespace = namespace
        self.timeout = checked
        self.state_dir = _state_dir(state_dir)
        self._conn: _Connection | _ViewConnection = _Connection(address, namespace, checked)
        self._views: dict[str, Client] = {}
        self._views_lock = threading.Lock()
        self._parent: Client | None = None
        self._init_collections()

    def _init_collections(self) -> None:
        from nomad_ctr.containers import ContainerCollection
        from nomad_ctr.images import ImageCollection

        self.images = ImageCollection(self)
        self.containers = ContainerCollection(self)

    @classmethod
    def from_env(cls, **overrides: Any) -> Client:
        """A client from CONTAINERD_ADDRESS and CONTAINERD_NAMESPACE (ctr's names)."""
        kwargs: dict[str, Any] = {
            "address": os.environ.get("CONTAINERD_ADDRESS") or DEFAULT_ADDRESS,
            "namespace": os.environ.get("CONTAINERD_NAMESPACE") or DEFAULT_NAMESPACE,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def with_namespace(self, namespace: str) -> Client:
        """A client for `namespace` on the same address, closed together with this one."""
        check_identifier(namespace, "namespace")
        root = self._parent or self
        root._conn.require()  # no new connections from a closed client
        if namespace == root.namespace:
            return root
        with root._views_lock:
            view = root._views.get(namespace)
            if view is None or view._conn.closed:
                view = Client.__new__(Client)
                view.address = root.address
                view.namespace = namespace
                view.timeout = root.timeout
                view.state_dir = root.state_dir
                # One connection serves every namespace: the view names its namespace
                # in each request (see _call).
                assert isinstance(root._conn, _Connection)
                view._conn = _ViewConnection(root._conn)
                view._views = {}
                view._views_lock = threading.Lock()
                view._parent = root
                view._init_collections()
                root._views[namespace] = view
        return view

    # --- calls ---------------------------------------------------------------------

    def _timeout(self, timeout: Any) -> float | None:
        if timeout is DEFAULT:
            return self.timeout
        return check_timeout(timeout)

    def _call(
        self,
        method: str,
        request: dict[str, Any] | None = None,
        *,
        timeout: Any = DEFAULT,
        op: Any = None,
    ) -> dict[str, Any]:
        """Call a bridge method with this client's handle and a timeout in seconds."""
        req: dict[str, Any] = {"client": self._conn.require()}
        if self._parent is not None:  # a view: the handle's own namespace is the root's
            req["namespace"] = self.namespace
        if request:
            req.update(request)
        # A deadline that fires on containerd's side first is TIMEOUT too (gobridge).
        resp: dict[str, Any] = bridge().call(method, req, timeout=self._timeout(timeout), op=op)
        return resp

    def _call_blocking(
        self, method: str, request: dict[str, Any] | None = None, *, timeout: float | None
    ) -> dict[str, Any]:
        """_call for calls that may block for long (wait, pull).

        A thread blocked inside the Go library never sees KeyboardInterrupt, so in the
        main thread the call runs on a helper thread under an op; Ctrl-C cancels the op
        and propagates. Other threads call directly (signals only reach the main thread).
        """
        if threading.current_thread() is not threading.main_thread():
            return self._call(method, request, timeout=timeout)
        op = bridge().Op()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = self._call(method, request, timeout=timeout, op=op)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                outcome["error"] = exc

        worker = threading.Thread(target=run, name=f"nomad-ctr-{method}", daemon=True)
        try:
            worker.start()
            while worker.is_alive():
                worker.join(_INTERRUPT_CHECK)
        except BaseException:
            op.cancel()
            worker.join()
            raise
        finally:
            op.close()
        if "error" in outcome:
            raise outcome["error"]
        resp: dict[str, Any] = outcome["value"]
        return resp

    def version(self, *, timeout: float | None = DEFAULT) -> Version:
        return Version.from_json(self._call("client.version", timeout=timeout))

    def is_serving(self, *, timeout: float | None = DEFAULT) -> bool:
        """True if containerd answers its health check; never raises for a down daemon."""
        try:
            return bool(self._call("client.health", timeout=timeout).get("serving"))
        except (errors.Unavailable, errors.Timeout):
            return False

    def events(
        self,
        topics: Iterable[str] | None = ("/tasks/exit", "/tasks/oom"),
        *,
        poll_interval: float = 1.0,
    ) -> EventStream:
        """One subscription to containerd's events in this namespace (see EventStream)."""
        from nomad_ctr.events import EventStream

        return EventStream(self, topics, poll_interval=poll_interval)

    # --- lifetime ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def close(self) -> None:
        """Release the bridge handle (and those of namespace views). Idempotent."""
        with self._views_lock:
            views, self._views = list(self._views.values()), {}
        for view in views:
            view._conn.close()
        self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<Client address={self.address!r} namespace={self.namespace!r}{state}>"


if TYPE_CHECKING:  # the import stays lazy at run time
    from nomad_ctr.events import EventStream
