"""Host port -> container port mappings (CNI portmap's runtimeConfig)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortMapping:
    """Publish ``container_port`` of the container on ``host_port`` of the host.

    ``host_ip`` limits the mapping to one host address ("" = every address,
    including 127.0.0.1). Nomad's PortMapping{value, to, host_ip} maps to
    ``PortMapping(value, to or value, "tcp", host_ip)``.
    """

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def __post_init__(self) -> None:
        for name in ("host_port", "container_port"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise ValueError(f"PortMapping.{name}: must be an integer 1-65535: {value!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"PortMapping.protocol: must be one of {', '.join(PROTOCOLS)}: {self.protocol!r}"
            )
        if self.host_ip:
            try:
                ipaddress.ip_address(self.host_ip)
            except ValueError:
                raise ValueError(
                    f"PortMapping.host_ip: not an IP address: {self.host_ip!r}"
                ) from None

    def to_cni(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol,
        }
        if self.host_ip:
            out["hostIP"] = self.host_ip
        return out

    @classmethod
    def from_cni(cls, data: dict[str, Any]) -> PortMapping:
        return cls(
            host_port=data["hostPort"],
            container_port=data["containerPort"],
            protocol=data.get("protocol", "tcp"),
            host_ip=data.get("hostIP", ""),
        )


def check_unique(ports: Iterable[PortMapping]) -> list[PortMapping]:
    """Reject two mappings of the same host address, port and protocol."""
    seen: dict[tuple[str, int, str], PortMapping] = {}
    out = []
    for p in ports:
        if not isinstance(p, PortMapping):
            raise ValueError(f"ports: expected PortMapping, got {p!r}")
        key = (p.host_ip, p.host_port, p.protocol)
        if key in seen:
            raise ValueError(f"ports: host port {p.host_port}/{p.protocol} mapped twice: {p!r}")
        seen[key] = p
        out.append(p)
    return out


def runtime_config(ports: Iterable[PortMapping]) -> dict[str, Any]:
    """The CNI runtimeConfig for these mappings ({} when there are none)."""
    mappings = [p.to_cni() for p in ports]
    return {"portMappings": mappings} if mappings else {}
