"""Fingerprint: is the driver usable on this node, and what does it offer.

The stream sends its first message at once, then whenever health or attributes
change, and at least every FINGERPRINT_EVERY seconds. It never ends on its own and
never fails: a down containerd or a disabled driver is an UNHEALTHY message.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

from nomad_ctr import errors
from nomad_ctr._pb import attribute_pb2, driver_pb2
from nomad_ctr.driver.base import PLUGIN_NAME
from nomad_ctr.driver.connection import Connection, NotConfigured, socket_problem

__all__ = ["FINGERPRINT_EVERY", "cgroup_version", "fingerprint", "fingerprints"]

log = logging.getLogger("nomad_ctr.driver.fingerprint")

FINGERPRINT_EVERY = 30.0
_Health = driver_pb2.FingerprintResponse
_PREFIX = f"driver.{PLUGIN_NAME}"


def cgroup_version() -> str:
    return "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"


def _attr(value: str | bool) -> attribute_pb2.Attribute:
    if isinstance(value, bool):
        return attribute_pb2.Attribute(bool_val=value)
    return attribute_pb2.Attribute(string_val=value)


def fingerprint(conn: Connection) -> driver_pb2.FingerprintResponse:
    try:
        config = conn.config
    except NotConfigured:
        return _Health(health=_Health.UNDETECTED, health_description="driver not configured yet")
    if not config.enabled:
        return _Health(health=_Health.UNHEALTHY, health_description="disabled (enabled = false in the plugin config)")
    if os.geteuid() != 0:
        return _Health(health=_Health.UNHEALTHY, health_description="Driver must run as root")
    if (problem := socket_problem(config.address)) is not None:
        # answer at once instead of waiting out the client's dial timeout
        return _Health(health=_Health.UNHEALTHY,
                       health_description=f"containerd at {config.address} is not reachable: {problem}")
    try:
        version = conn.client().version(timeout=5.0)
    except (errors.ContainerdError, OSError) as exc:
        return _Health(
            health=_Health.UNHEALTHY,
            health_description=f"containerd at {config.address} is not reachable: {exc}",
        )
    attrs = {
        _PREFIX: _attr(True),
        f"{_PREFIX}.containerd_version": _attr(version.version),
        f"{_PREFIX}.containerd_revision": _attr(version.revision),
        f"{_PREFIX}.runtime": _attr(config.containerd_runtime),
        f"{_PREFIX}.cgroup_version": _attr(cgroup_version()),
        f"{_PREFIX}.namespace": _attr(config.namespace),
    }
    return _Health(attributes=attrs, health=_Health.HEALTHY, health_description="Healthy")


def fingerprints(conn: Connection, is_active: Callable[[], bool], every: float | None = None,
                 poll: float = 0.5) -> Iterator[driver_pb2.FingerprintResponse]:
    # FINGERPRINT_EVERY is read per stream, not bound at import, so tests can shorten it
    every = FINGERPRINT_EVERY if every is None else every
    last: driver_pb2.FingerprintResponse | None = None
    waited = 0.0
    while is_active():
        if last is None or waited >= every or conn.changed.is_set():
            conn.changed.clear()
            try:
                current = fingerprint(conn)
            except Exception as exc:  # never end the stream
                log.exception("fingerprint failed")
                current = _Health(health=_Health.UNHEALTHY, health_description=f"fingerprint failed: {exc}")
            if last is None or current != last or waited >= every:
                if last is not None and current.health != last.health:
                    log.info("driver health changed", extra={"health": _Health.HealthState.Name(current.health),
                                                              "description": current.health_description})
                yield current
                last, waited = current, 0.0
        conn.changed.wait(poll)
        waited += poll
