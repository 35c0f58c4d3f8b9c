"""The network step of StartTask: which network namespace, and which /etc files.

plan_network() decides, sets up what the driver owns, and returns a TaskNetPlan:
- host_network: the host's netns, its /etc/resolv.conf and /etc/hosts mounted
  read-only; with extra_hosts a copy of the host's /etc/hosts plus those entries;
- a GROUP isolation spec with a path (Nomad made the netns): join it;
- otherwise (no spec, a HOST or TASK spec) a netns of the driver's own, attached
  with CNI (bridge + host-local + portmap, nomad_ctr.net) and Nomad's port
  mappings (Resources.ports) published through portmap; a NONE spec gets a
  netns of its own with loopback only.
Outside the host netns we generate hosts (the container's hostname, its address and
the job's extra_hosts), hostname, and resolv.conf (the job's DNS config, or a
filtered copy of the host's when host_dns is true) into a driver-owned directory.

The driver's CNI network is keyed by attachment_id(containerd namespace, container
id); nomad_ctr.net records what teardown needs in a state file, so
release_network() works after a plugin restart from that id alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from nomad_ctr import net
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import ConfigError, DriverConfig, TaskConfig
from nomad_ctr.driver.specbuild import NetPlan, default_task_hostname, task_dir
from nomad_ctr.net import build_resolv_conf, parse_extra_host, write_etc_files
from nomad_ctr.net.files import write_in_place

__all__ = [
    "DRIVER_NET_STATE_DIR",
    "HOST_ETC_MOUNTS",
    "TaskNetPlan",
    "bridge_config",
    "etc_dir_for",
    "network_override",
    "plan_network",
    "release_network",
    "remove_etc_dir",
]

log = logging.getLogger("nomad_ctr.driver.netplan")

_Mode = driver_pb2.NetworkIsolationSpec
HOST_ETC_MOUNTS = (("/etc/hosts", "/etc/hosts"), ("/etc/resolv.conf", "/etc/resolv.conf"))
ETC_DIR_NAME = "containerd-driver-etc"  # in the task dir, which the container cannot see
# Stable across plugin restarts (teardown after RecoverTask reads its state here);
# under /run, like the namespaces it describes, so a reboot clears both.
DRIVER_NET_STATE_DIR = Path("/run/nomad-ctr/driver/net")
PORT_PROTOCOLS = ("tcp", "udp")  # Nomad's bridge mode maps both for every port


@dataclass(frozen=True)
class TaskNetPlan(NetPlan):
    """NetPlan plus what the driver created for the task (released on destroy)."""

    net_id: str = ""  # attachment id of the driver's own CNI network ("" = none)
    own_netns: str = ""  # a loopback-only netns the driver made (NONE spec)
    ip: str = ""  # the task's address on the driver's network
    port_map: dict[str, int] = field(default_factory=dict)  # port label -> port in the task
    driver: DriverConfig | None = field(default=None, repr=False, compare=False)


def bridge_config(driver: DriverConfig | None) -> net.BridgeConfig:
    """The driver's bridge network for `driver`'s bridge_subnet and cni_bin_dir.

    The bridge and network names derive from the subnet, so plugins configured with
    different subnets on one host never share (and fight over) one bridge."""
    if driver is None:
        return net.BridgeConfig(state_dir=DRIVER_NET_STATE_DIR)
    subnet = str(driver.bridge_subnet)
    tag = hashlib.sha256(subnet.encode()).hexdigest()[:8]
    return net.BridgeConfig(
        network_name=f"nomad-ctr-driver-{tag}",
        bridge=f"nctrd{tag}",
        subnet=subnet,
        plugin_dirs=(Path(driver.cni_bin_dir),),
        state_dir=DRIVER_NET_STATE_DIR,
    )


def etc_dir_for(task: driver_pb2.TaskConfig, container_id: str) -> str:
    if task.alloc_dir:
        return os.path.join(task_dir(task), ETC_DIR_NAME)
    return os.path.join("/run/nomad-ctr-driver", container_id, "etc")


def _fresh_dir(path: str) -> None:
    """An empty real directory at `path` (never following a planted symlink)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.mkdir(path, 0o755)


def remove_etc_dir(path: str) -> None:
    if not path:
        return
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.unlink(path)


def _port_mappings(task: driver_pb2.TaskConfig) -> tuple[list[net.PortMapping], dict[str, int]]:
    mappings: list[net.PortMapping] = []
    port_map: dict[str, int] = {}
    for i, p in enumerate(task.resources.ports):
        to = p.to if p.to > 0 else p.value  # to = 0: same port; -1: Nomad's "same as host"
        try:
            for proto in PORT_PROTOCOLS:
                mappings.append(net.PortMapping(p.value, to, proto, p.host_ip))
        except ValueError as exc:
            raise ConfigError("task", f"resources.ports[{i}] ({p.label})", str(exc)) from None
        if p.label:
            port_map[p.label] = to
    return mappings, port_map


def _host_hosts_with_extras(etc_dir: str, tc: TaskConfig) -> str:
    """A copy of the host's /etc/hosts with the job's extra_hosts appended."""
    try:
        extras = [parse_extra_host(f"{h.host}:{h.ip}").line() for h in tc.extra_hosts]
    except ValueError as exc:
        raise ConfigError("task", "extra_hosts", str(exc)) from None
    with open("/etc/hosts", encoding="utf-8", errors="replace") as f:
        base = f.read()
    if base and not base.endswith("\n"):
        base += "\n"
    path = os.path.join(etc_dir, "hosts")
    write_in_place(path, base + "# extra_hosts (containerd-driver)\n" + "\n".join(extras) + "\n")
    return path


def _resolv(task: driver_pb2.TaskConfig, tc: TaskConfig) -> tuple[net.ResolvConf | None, bool]:
    """(the job's DNS config or None for the filtered host copy, mount it at all)."""
    if task.HasField("dns") and (task.dns.servers or task.dns.searches or task.dns.options):
        try:
            return build_resolv_conf(task.dns.servers, task.dns.searches, task.dns.options), True
        except ValueError as exc:
            raise ConfigError("task", "dns", str(exc)) from None
    return None, tc.host_dns


def plan_network(task: driver_pb2.TaskConfig, tc: TaskConfig, container_id: str, *,
                 namespace: str = "", driver: DriverConfig | None = None) -> TaskNetPlan:
    """Decide the task's network and create what the driver owns (its netns, CNI
    attachment, /etc files). On failure everything made here is removed again.
    Without `namespace` (validation, unit tests) no CNI network is set up."""
    spec = task.network_isolation_spec if task.HasField("network_isolation_spec") else None
    etc_dir = etc_dir_for(task, container_id)
    if tc.host_network:
        if not tc.extra_hosts:
            return TaskNetPlan(host_network=True, etc_mounts=HOST_ETC_MOUNTS)
        _fresh_dir(etc_dir)
        try:
            hosts = _host_hosts_with_extras(etc_dir, tc)
        except BaseException:
            remove_etc_dir(etc_dir)
            raise
        return TaskNetPlan(host_network=True, etc_dir=etc_dir,
                           etc_mounts=((hosts, "/etc/hosts"), ("/etc/resolv.conf", "/etc/resolv.conf")))

    hostname = tc.hostname or default_task_hostname(task)
    dns, mount_resolv = _resolv(task, tc)
    mode = spec.mode if spec is not None else _Mode.HOST
    netns_path: str | None = None
    ip: str | None = None
    net_id = own_netns = ""
    port_map: dict[str, int] = {}
    ipv6 = True
    if mode == _Mode.GROUP:
        if not spec or not spec.path:
            raise ConfigError("task", "network_isolation_spec.path", "is empty for a group network")
        netns_path = spec.path
        if spec.HasField("hostsConfig"):
            hostname = tc.hostname or spec.hostsConfig.hostname or hostname
            ip = spec.hostsConfig.address or None
    elif mode == _Mode.NONE and namespace:
        own_netns = str(net.create_netns(net.netns_name_for(net.attachment_id(namespace, container_id)),
                                         exist_ok=True))
        netns_path = own_netns
    elif namespace:
        mappings, port_map = _port_mappings(task)
        net_id = net.attachment_id(namespace, container_id)
        config = bridge_config(driver)
        net.destroy_sandbox(net_id, config=config)  # a crash may have left one behind
        att = net.create_sandbox(net_id, ports=mappings, config=config)
        netns_path, ip, ipv6 = att.netns_path, att.ip, ":" in att.ip

    plan = TaskNetPlan(netns_path=netns_path, hostname=hostname, etc_dir=etc_dir, net_id=net_id,
                       own_netns=own_netns, ip=ip or "", port_map=port_map, driver=driver)
    try:
        _fresh_dir(etc_dir)
        files = write_etc_files(
            etc_dir,
            hostname=hostname,
            ip=ip,
            extra_hosts=[f"{h.host}:{h.ip}" for h in tc.extra_hosts],
            dns=dns,
            ipv6=ipv6 if net_id else True,
        )
    except BaseException:
        release_network(plan)
        raise
    mounts = [(str(files.hosts), "/etc/hosts"), (str(files.hostname), "/etc/hostname")]
    if mount_resolv:
        mounts.append((str(files.resolv_conf), "/etc/resolv.conf"))
    return replace(plan, etc_mounts=tuple(mounts))


def release_network(plan: NetPlan | None = None, *, etc_dir: str = "", net_id: str = "",
                    own_netns: str = "", driver: DriverConfig | None = None) -> None:
    """Remove what plan_network made: the CNI attachment and its netns, a
    loopback-only netns, the generated /etc files. Idempotent; a CNI error is
    raised (after the rest was removed) so the caller can retry."""
    if isinstance(plan, TaskNetPlan):
        etc_dir, net_id, own_netns = plan.etc_dir, plan.net_id, plan.own_netns
        driver = driver or plan.driver
    elif plan is not None:
        etc_dir = plan.etc_dir
    remove_etc_dir(etc_dir)
    if own_netns:
        net.delete_netns(own_netns)
    if net_id:
        net.destroy_sandbox(net_id, config=bridge_config(driver))


def network_override(plan_or_ip: TaskNetPlan | str, port_map: dict[str, int] | None = None
                     ) -> driver_pb2.NetworkOverride | None:
    """What StartTask/InspectTask tell Nomad about the task's own address (None
    when the driver made no network): services with address_mode = "driver" use it.
    Not auto-advertised: the address is only reachable from this host."""
    if isinstance(plan_or_ip, TaskNetPlan):
        ip, port_map = plan_or_ip.ip, plan_or_ip.port_map
    else:
        ip = plan_or_ip
    if not ip:
        return None
    return driver_pb2.NetworkOverride(addr=ip, port_map=port_map or {}, auto_advertise=False)
