"""The driver's containerd connection: made on first use, never at SetConfig.

containerd may be down when the agent configures the plugin; SetConfig must still
succeed and Fingerprint report the driver unhealthy until containerd answers.
"""

from __future__ import annotations

import logging
import socket
import threading

from nomad_ctr import Client, errors
from nomad_ctr.driver.config import DriverConfig

__all__ = ["Connection", "NotConfigured", "socket_problem"]

log = logging.getLogger("nomad_ctr.driver.connection")

CALL_TIMEOUT = 10.0


def socket_problem(address: str) -> str | None:
    """Why nothing accepts connections at the unix socket `address` (None: something does).

    A quick probe, so a down containerd is reported at once rather than after the
    client's dial timeout."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(address)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


class NotConfigured(Exception):
    """No SetConfig yet."""


class Connection:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: DriverConfig | None = None
        self._client: Client | None = None
        self.changed = threading.Event()  # set on every config change (fingerprint wakes)

    def configure(self, config: DriverConfig) -> None:
        with self._lock:
            old, self._config = self._config, config
            stale = self._client if old is not None and (
                old.address != config.address or old.namespace != config.namespace
            ) else None
            if stale is not None:
                self._client = None
        if stale is not None:
            stale.close()
        self.changed.set()

    @property
    def config(self) -> DriverConfig:
        with self._lock:
            if self._config is None:
                raise NotConfigured("the driver has not been configured (no SetConfig yet)")
            return self._config

    @property
    def configured(self) -> bool:
        with self._lock:
            return self._config is not None

    def client(self) -> Client:
        """The client for the configured address and namespace (errors.Unavailable if down)."""
        config = self.config
        with self._lock:
            if self._client is not None and not self._client.closed:
                return self._client
            # A missing or refusing socket fails here at once (gobridge probes it first).
            client = Client(address=config.address, namespace=config.namespace, timeout=CALL_TIMEOUT)
            self._client = client
            log.info("connected to containerd", extra={"address": config.address, "namespace": config.namespace})
            return client

    def client_for(self, namespace: str) -> Client:
        client = self.client()
        return client if namespace == client.namespace else client.with_namespace(namespace)

    def reset(self) -> None:
        """Drop the client (after an error that suggests the handle is broken)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except errors.ContainerdError:
                pass

    def close(self) -> None:
        self.reset()
