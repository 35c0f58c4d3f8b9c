"""The CNI conflist for our default bridge network.

loopback -> bridge (gateway, masquerade, host-local IPAM) -> firewall -> portmap.

Reaching a published port through 127.0.0.1 needs two things, both done by
portmap when ``"snat": true``: it sets ``net.ipv4.conf.<bridge>.route_localnet=1``
(else the kernel drops a packet with a 127.0.0.1 source leaving a non-loopback
device) and masquerades DNAT'ed packets from 127.0.0.1 (mark 0x2000 in
CNI-HOSTPORT-MASQ) so the reply comes back through the bridge. ``all.route_localnet``
is not needed. The bridge plugin turns on ``net.ipv4.ip_forward`` (isGateway).
The firewall plugin opens FORWARD for the container IP, for hosts whose FORWARD
policy is DROP (e.g. where Docker runs).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cni import DEFAULT_PLUGIN_DIRS, DEFAULT_TIMEOUT, validate_ifname
from .errors import NetError

# Distinct from Nomad's own bridge (172.26.64.0/20) so both can run on one host.
DEFAULT_SUBNET = "172.26.96.0/20"
DEFAULT_BRIDGE = "nomadctr0"
DEFAULT_NETWORK_NAME = "nomad-ctr"
# Under /run: reservations and state die with the namespaces at reboot.
DEFAULT_IPAM_DIR = Path("/run/nomad-ctr/cni/networks")
DEFAULT_STATE_DIR = Path("/run/nomad-ctr/net")

_NETWORK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


@dataclass(frozen=True)
class BridgeConfig:
    """Where and how containers are attached; validated on construction."""

    network_name: str = DEFAULT_NETWORK_NAME
    bridge: str = DEFAULT_BRIDGE
    subnet: str = DEFAULT_SUBNET
    gateway: str = ""  # "" = first address of the subnet (host-local's default)
    ip_masq: bool = True
    hairpin: bool = True
    mtu: int = 0  # 0 = kernel default
    firewall: bool = True
    localhost_ports: bool = True  # portmap snat: published ports answer on 127.0.0.1
    ipam_data_dir: Path = DEFAULT_IPAM_DIR
    state_dir: Path = DEFAULT_STATE_DIR
    plugin_dirs: tuple[Path, ...] = DEFAULT_PLUGIN_DIRS
    cni_version: str = "1.0.0"
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not isinstance(self.network_name, str) or not _NETWORK_NAME_RE.match(self.network_name):
            raise ValueError(f"BridgeConfig.network_name: invalid: {self.network_name!r}")
        try:
            validate_ifname(self.bridge)
        except ValueError:
            raise ValueError(
                f"BridgeConfig.bridge: invalid interface name (max 15 chars): {self.bridge!r}"
            ) from None
        try:
            net = ipaddress.ip_network(self.subnet, strict=True)
        except ValueError as exc:
            raise ValueError(f"BridgeConfig.subnet: {exc}: {self.subnet!r}") from None
        if net.num_addresses < 4:
            raise ValueError(f"BridgeConfig.subnet: too small: {self.subnet!r}")
        if self.gateway:
            try:
                gw = ipaddress.ip_address(self.gateway)
            except ValueError:
                raise ValueError(
                    f"BridgeConfig.gateway: not an IP address: {self.gateway!r}"
                ) from None
            if gw not in net or gw in (net.network_address, net.broadcast_address):
                raise ValueError(
                    f"BridgeConfig.gateway: not a host address of {self.subnet}: {self.gateway!r}"
                )
        if (
            isinstance(self.mtu, bool)
            or not isinstance(self.mtu, int)
            or (self.mtu != 0 and not 576 <= self.mtu <= 65535)
        ):
            raise ValueError(f"BridgeConfig.mtu: must be 0 or 576-65535: {self.mtu!r}")
        if not Path(self.ipam_data_dir).is_absolute():
            raise ValueError(
                f"BridgeConfig.ipam_data_dir: must be absolute: {self.ipam_data_dir!r}"
            )
        if not Path(self.state_dir).is_absolute():
            raise ValueError(f"BridgeConfig.state_dir: must be absolute: {self.state_dir!r}")
        if self.timeout <= 0:
            raise ValueError(f"BridgeConfig.timeout: must be positive: {self.timeout!r}")


def build_conflist(config: BridgeConfig) -> dict[str, Any]:
    """The CNI network configuration list for ``config``."""
    range_: dict[str, Any] = {"subnet": config.subnet}
    if config.gateway:
        range_["gateway"] = config.gateway
    default_route = "::/0" if ipaddress.ip_network(config.subnet).version == 6 else "0.0.0.0/0"
    bridge: dict[str, Any] = {
        "type": "bridge",
        "bridge": config.bridge,
        "isGateway": True,
        "ipMasq": config.ip_masq,
        "hairpinMode": config.hairpin,
        "ipam": {
            "type": "host-local",
            "ranges": [[range_]],
            "routes": [{"dst": default_route}],
            "dataDir": str(config.ipam_data_dir),
        },
    }
    if config.mtu:
        bridge["mtu"] = config.mtu
    plugins: list[dict[str, Any]] = [{"type": "loopback"}, bridge]
    if config.firewall:
        plugins.append({"type": "firewall"})
    plugins.append(
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": config.localhost_ports}
    )
    return {"cniVersion": config.cni_version, "name": config.network_name, "plugins": plugins}


def remove_bridge(config: BridgeConfig) -> bool:
    """Delete the bridge device if no container is attached to it any more.

    The bridge plugin creates the device on first ADD and never removes it.
    Returns True if it was deleted, False if absent or still in use.
    """
    ports = Path("/sys/class/net") / config.bridge / "brif"
    if not ports.is_dir() or any(ports.iterdir()):
        return False
    proc = subprocess.run(
        ["ip", "link", "del", config.bridge], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 and Path("/sys/class/net", config.bridge).exists():
        raise NetError(f"ip link del {config.bridge}: {proc.stderr.strip()}")
    return True
