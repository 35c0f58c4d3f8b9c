"""Attach a network namespace to the bridge network, and detach it again.

What teardown needs (the exact conflist, port mappings, netns path and the ADD
result, which the firewall plugin requires on DEL) is kept in a small JSON file
``<state_dir>/<container_id>.json``, so teardown works after our process
restarted. The file is written *before* ADD, so a crash half-way through ADD
can still be undone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bridge import BridgeConfig, build_conflist
from .cni import (
    CNIDNS,
    CNIResult,
    CNIRuntime,
    parse_result,
    validate_conflist,
    validate_container_id,
    validate_ifname,
)
from .errors import CNIError, CNIPluginNotFound, NetError
from .iptables import remove_masquerade_rules
from .netns import netns_exists
from .ports import PortMapping, check_unique, runtime_config
from .state import STATE_VERSION, ContainerLock, read_state, state_path, write_state


@dataclass(frozen=True)
class NetworkAttachment:
    """Where a container ended up on the network."""

    container_id: str
    netns_path: str
    network_name: str
    interface: str  # inside the namespace, e.g. "eth0"
    ip: str  # the container's address, e.g. "172.26.96.2"
    prefix_len: int
    gateway: str
    mac: str = ""
    ports: tuple[PortMapping, ...] = ()
    dns: CNIDNS = field(default_factory=CNIDNS)


def _attachment(
    container_id: str,
    netns_path: str,
    network_name: str,
    ifname: str,
    result: CNIResult,
    ports: Iterable[PortMapping],
) -> NetworkAttachment:
    ips = result.ips_for(ifname) or list(result.ips)
    if not ips:
        raise NetError(f"CNI result for {container_id!r} has no IP address")
    first = ips[0]
    mac = next((i.mac for i in result.interfaces if i.name == ifname and i.sandbox), "")
    return NetworkAttachment(
        container_id=container_id,
        netns_path=netns_path,
        network_name=network_name,
        interface=ifname,
        ip=str(first.address.ip),
        prefix_len=first.address.network.prefixlen,
        gateway=str(first.gateway) if first.gateway else "",
        mac=mac,
        ports=tuple(ports),
        dns=result.dns,
    )


def setup_network(
    container_id: str,
    netns_path: str | os.PathLike[str],
    *,
    ports: Iterable[PortMapping] = (),
    config: BridgeConfig | None = None,
    ifname: str = "eth0",
    conflist: Mapping[str, Any] | None = None,
) -> NetworkAttachment:
    """Attach the namespace at ``netns_path`` to the bridge network.

    ``container_id`` names the attachment (CNI_CONTAINERID, IPAM reservation,
    iptables comments, state file); use the containerd container ID. On any
    failure everything done so far is undone before the error is raised.
    ``conflist``: a network list to use instead of ``build_conflist(config)``
    (an operator's own); ``config`` then only gives the plugin and state dirs
    and the timeout. Raises ValueError for bad arguments, NetError/CNIError otherwise.
    """
    config = config or BridgeConfig()
    validate_container_id(container_id)
    validate_ifname(ifname)
    if conflist is not None:
        validate_conflist(conflist)
        conflist = json.loads(json.dumps(conflist))  # our own copy, as stored
    ports = tuple(check_unique(ports))
    path = str(netns_path)
    if not os.path.isabs(path):
        raise ValueError(f"netns_path: must be absolute: {path!r}")
    with ContainerLock(config.state_dir, container_id) as lock:
        try:
            return _setup_locked(container_id, path, ports, config, ifname, conflist)
        except BaseException:
            # Rolled back completely: nothing is recorded, drop the lock file.
            lock.remove = not state_path(config.state_dir, container_id).exists()
            raise


def _setup_locked(
    container_id: str,
    path: str,
    ports: tuple[PortMapping, ...],
    config: BridgeConfig,
    ifname: str,
    custom: dict[str, Any] | None,
) -> NetworkAttachment:
    if not netns_exists(path):
        raise NetError(f"netns_path: no network namespace at {path!r}")
    state_file = state_path(config.state_dir, container_id)
    old = read_state(state_file)
    if old is not None:
        if old.get("complete"):
            raise NetError(
                f"container {container_id!r} is already attached to "
                f"{old.get('network_name')!r}; tear it down first"
            )
        _teardown_locked(container_id, config, None)  # a crash left a half ADD
    conflist = custom if custom is not None else build_conflist(config)
    rc = runtime_config(ports)
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "container_id": container_id,
        "netns_path": path,
        "ifname": ifname,
        "network_name": conflist["name"],
        "plugin_dirs": [str(d) for d in config.plugin_dirs],
        "conflist": conflist,
        "runtime_config": rc,
        "result": None,  # the prevResult DEL gets: the last result ADD reached
        "complete": False,
    }
    write_state(state_file, state)
    runtime = CNIRuntime(plugin_dirs=tuple(config.plugin_dirs), timeout=config.timeout)
    try:
        result = runtime.add(
            conflist, container_id=container_id, netns=path, ifname=ifname, runtime_config=rc
        )
        attachment = _attachment(container_id, path, conflist["name"], ifname, result, ports)
        state["result"] = dict(result.raw)
        state["complete"] = True
        write_state(state_file, state)
    except BaseException as exc:
        if isinstance(exc, CNIError) and exc.failed_index is not None:
            # Undo only what ran, with the result it had reached (the firewall
            # plugin needs it to find its rules).
            ran = exc.failed_index + (0 if isinstance(exc, CNIPluginNotFound) else 1)
            state["conflist"] = {**conflist, "plugins": conflist["plugins"][:ran]}
            state["result"] = exc.partial_result
            write_state(state_file, state)
        try:
            _teardown_locked(container_id, config, None)
        except Exception:  # keep the state file for a later retry; raise the cause
            pass
        raise
    return attachment


def load_attachment(
    container_id: str, *, config: BridgeConfig | None = None
) -> NetworkAttachment | None:
    """The attachment recorded for ``container_id`` (None if not attached)."""
    config = config or BridgeConfig()
    state = read_state(state_path(config.state_dir, container_id))
    if state is None or not state.get("complete"):
        return None
    ports = tuple(PortMapping.from_cni(p) for p in state["runtime_config"].get("portMappings", []))
    return _attachment(
        container_id,
        state["netns_path"],
        state["network_name"],
        state["ifname"],
        parse_result(state["result"]),
        ports,
    )


def teardown_network(
    container_id: str,
    *,
    config: BridgeConfig | None = None,
    netns_path: str | os.PathLike[str] | None = None,
) -> bool:
    """Detach ``container_id``; idempotent. Returns False if nothing was recorded.

    Uses the recorded state (conflist, ports, ADD result), so it works after a
    restart and after the namespace was deleted. Without state, nothing is
    known to undo and False is returned. Works whether or not the namespace
    still exists; the namespace itself is left to its owner. On a plugin error
    the state is kept (so a retry can finish) and CNIError is raised.
    """
    config = config or BridgeConfig()
    validate_container_id(container_id)
    with ContainerLock(config.state_dir, container_id) as lock:
        done = _teardown_locked(container_id, config, netns_path)
        lock.remove = True  # nothing recorded any more either way
    return done


def _teardown_locked(
    container_id: str, config: BridgeConfig, netns_path: str | os.PathLike[str] | None
) -> bool:
    state_file = state_path(config.state_dir, container_id)
    state = read_state(state_file)
    if state is None:
        return False
    path = str(netns_path) if netns_path is not None else str(state["netns_path"])
    runtime = CNIRuntime(
        plugin_dirs=tuple(Path(d) for d in state.get("plugin_dirs") or config.plugin_dirs),
        timeout=config.timeout,
    )
    conflist = state["conflist"]
    if conflist["plugins"]:
        runtime.delete(
            conflist,
            container_id=container_id,
            # An empty CNI_NETNS tells plugins the namespace is gone: they
            # release IPAM and host-side rules and skip the in-namespace parts.
            netns=path if netns_exists(path) else "",
            ifname=state["ifname"],
            runtime_config=state["runtime_config"],
            prev_result=state["result"],
        )
    if any(p.get("type") == "bridge" and p.get("ipMasq") for p in conflist["plugins"]):
        # The bridge plugin skips this when the namespace or address is gone.
        remove_masquerade_rules(conflist["name"], container_id)
        if _has_ipv6(state["result"]):
            remove_masquerade_rules(conflist["name"], container_id, ipv6=True)
    state_file.unlink(missing_ok=True)
    return True


def _has_ipv6(raw_result: Mapping[str, Any] | None) -> bool:
    if not raw_result:
        return False
    return any(ip.address.version == 6 for ip in parse_result(raw_result).ips)


def check_network(container_id: str, *, config: BridgeConfig | None = None) -> None:
    """Ask the plugins (CNI CHECK) whether the recorded attachment is intact.

    Raises NetError if nothing is recorded, CNIError naming the plugin that
    found a problem (e.g. the veth or the IP is gone). Port mappings of an
    IPv4-only attachment are not checked (a portmap bug, see below).
    """
    config = config or BridgeConfig()
    state = read_state(state_path(config.state_dir, container_id))
    if state is None or not state.get("complete"):
        raise NetError(f"container {container_id!r} has no recorded network attachment")
    conflist = dict(state["conflist"])
    if not _has_ipv6(state["result"]):
        # portmap <= 1.2 CHECKs its IPv6 chain even for IPv4-only containers
        # and always fails (containernetworking/plugins#819): skip it there.
        conflist["plugins"] = [p for p in conflist["plugins"] if p.get("type") != "portmap"]
    CNIRuntime(
        plugin_dirs=tuple(Path(d) for d in state.get("plugin_dirs") or config.plugin_dirs),
        timeout=config.timeout,
    ).check(
        conflist,
        state["result"],
        container_id=container_id,
        netns=state["netns_path"],
        ifname=state["ifname"],
        runtime_config=state["runtime_config"],
    )
