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

check_network() checks everything the step will use that is known before the pull
(DNS values, port mappings, Nomad's hosts config, the operator's network list in
cni_conf_dir) and says which /etc files the task will get; StartTask calls it in its
parse step, so bad values fail before anything is created.

The driver's own network is the operator's `<cni_conf_dir>/nomad-ctr.conflist` when
that file exists, else bridge + portmap generated from bridge_subnet (never written
to disk: a written copy would pin the subnet; each task's list is in its state file).

The driver's CNI network is keyed by attachment_id(containerd namespace, container
id); nomad_ctr.net records what teardown needs in a state file, so
release_network() works after a plugin restart from that id alone.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nomad_ctr import net
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import ConfigError, DriverConfig, TaskConfig
from nomad_ctr.driver.specbuild import NetPlan, default_task_hostname, task_dir
from nomad_ctr.net import parse_extra_host, write_etc_files
from nomad_ctr.net.cni import validate_conflist
from nomad_ctr.net.files import write_in_place
from nomad_ctr.net.ports import check_unique
from nomad_ctr.net.resolvconf import validate_nameserver, validate_option, validate_search

__all__ = [
    "DRIVER_NET_STATE_DIR",
    "HOST_ETC_MOUNTS",
    "OPERATOR_CONFLIST",
    "NetCheck",
    "TaskNetPlan",
    "bridge_config",
    "check_network",
    "etc_dir_for",
    "operator_conflist",
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
OPERATOR_CONFLIST = "nomad-ctr.conflist"  # in cni_conf_dir: the operator's network for the driver
MAX_CONFLIST_BYTES = 1 << 20


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


def _port_mappings(task: driver_pb2.TaskConfig) -> tuple[tuple[net.PortMapping, ...], dict[str, int]]:
    mappings: list[net.PortMapping] = []
    port_map: dict[str, int] = {}
    for i, p in enumerate(task.resources.ports):
        to = p.to if p.to > 0 else p.value  # to = 0: same port; -1: Nomad's "same as host"
        name = f"resources.ports[{i}] ({p.label})"
        try:
            for proto in PORT_PROTOCOLS:
                mappings.append(net.PortMapping(p.value, to, proto, p.host_ip))
            check_unique(mappings)
        except ValueError as exc:
            raise ConfigError("task", name, str(exc)) from None
        if p.label:
            port_map[p.label] = to
    return tuple(mappings), port_map


def _dns(task: driver_pb2.TaskConfig) -> net.ResolvConf | None:
    """Nomad's DNS config (None when it sends none), each value checked and named."""
    if not task.HasField("dns") or not (task.dns.servers or task.dns.searches or task.dns.options):
        return None
    rules = (
        ("servers", task.dns.servers, validate_nameserver, "is not an IPv4 or IPv6 address"),
        ("searches", task.dns.searches, validate_search, "is not a domain name"),
        ("options", task.dns.options, validate_option, 'is not a resolv.conf option ("name" or "name:number")'),
    )
    checked: dict[str, tuple[str, ...]] = {}
    for name, values, check, rule in rules:
        out = []
        for i, value in enumerate(values):
            try:
                out.append(check(value))
            except ValueError:
                raise ConfigError("task", f"dns.{name}[{i}]", rule, value) from None
        checked[name] = tuple(out)
    return net.ResolvConf(checked["servers"], checked["searches"], checked["options"])


def _read_limited(path: str) -> bytes | None:
    """The file's bytes; None when it does not exist. Never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise _conflist_error(os.path.dirname(path), "is not a directory") from None
        raise _conflist_error(path, f"cannot be read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _conflist_error(path, "is not a regular file")
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            # its plugins run as root with whatever config it holds
            raise _conflist_error(path, "may be changed by other users than root (want owner root, mode 644)")
        chunks, size = [], 0
        while size <= MAX_CONFLIST_BYTES and (chunk := os.read(fd, MAX_CONFLIST_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise _conflist_error(path, f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFLIST_BYTES:
        raise _conflist_error(path, "is larger than 1 MiB")
    return data


def _conflist_error(path: str, rule: str) -> ConfigError:
    # the path is shown whole (not cut like values): its file name is the point
    return ConfigError("driver", "cni_conf_dir", f"{json.dumps(path)} {rule}")


def operator_conflist(driver: DriverConfig | None) -> tuple[str, dict[str, Any]] | None:
    """(path, network list) of `<cni_conf_dir>/nomad-ctr.conflist`, or None when there is
    no such file (the driver then generates its bridge network). A file that is there but
    unusable is a ConfigError naming it: silently falling back would put tasks on a
    network the operator did not choose."""
    if driver is None:
        return None
    path = os.path.join(driver.cni_conf_dir, OPERATOR_CONFLIST)
    data = _read_limited(path)
    if data is None:
        return None
    try:
        conflist = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _conflist_error(path, f"is not valid JSON ({exc})") from None
    try:
        validate_conflist(conflist)
    except ValueError as exc:
        raise _conflist_error(path, f"is not a CNI network list ({exc})") from None
    return path, conflist


@dataclass(frozen=True)
class NetCheck:
    """What the network step will do, worked out before anything is created."""

    etc_targets: tuple[str, ...]  # the /etc files the driver mounts into the task
    own_network: bool = False  # the task gets the driver's CNI network
    ports: tuple[net.PortMapping, ...] = ()
    port_map: dict[str, int] = field(default_factory=dict)
    dns: net.ResolvConf | None = None  # Nomad's DNS config
    conflist: dict[str, Any] | None = field(default=None, compare=False)  # the operator's, else generated

    def dry_plan(self, host_network: bool) -> NetPlan:
        """A plan for build_spec's validation: the /etc targets, no files yet."""
        return NetPlan(host_network=host_network, etc_mounts=tuple((t, t) for t in self.etc_targets))


def check_network(task: driver_pb2.TaskConfig, tc: TaskConfig, driver: DriverConfig | None = None) -> NetCheck:
    """Check the network step's inputs (ConfigError names the field) and decide which
    /etc files the task gets:
    - host_network: /etc/hosts and /etc/resolv.conf (the host's; hostname, DNS ignored);
    - otherwise /etc/hosts and /etc/hostname, plus /etc/resolv.conf when Nomad sends a
      DNS config or host_dns is true."""
    extras = []
    for i, h in enumerate(tc.extra_hosts):
        try:
            extras.append(parse_extra_host(f"{h.host}:{h.ip}"))
        except ValueError as exc:
            raise ConfigError("task", f"extra_hosts[{i}]", str(exc)) from None
    if tc.host_network:
        return NetCheck(etc_targets=("/etc/hosts", "/etc/resolv.conf"))
    dns = _dns(task)
    targets = ("/etc/hosts", "/etc/hostname") + (("/etc/resolv.conf",) if dns or tc.host_dns else ())
    spec = task.network_isolation_spec if task.HasField("network_isolation_spec") else None
    mode = spec.mode if spec is not None else _Mode.HOST
    if mode == _Mode.GROUP:
        if not spec or not spec.path:
            raise ConfigError("task", "network_isolation_spec.path", "is empty for a group network")
        if spec.HasField("hostsConfig"):
            hosts = spec.hostsConfig
            if hosts.hostname and not tc.hostname and not net.is_valid_hostname(hosts.hostname):
                raise ConfigError("task", "network_isolation_spec.hostsConfig.hostname", "is not a host name",
                                  hosts.hostname)
            if hosts.address:
                try:
                    ipaddress.ip_address(hosts.address)
                except ValueError:
                    raise ConfigError("task", "network_isolation_spec.hostsConfig.address",
                                      "is not an IP address", hosts.address) from None
        return NetCheck(etc_targets=targets, dns=dns)
    if mode == _Mode.NONE:
        return NetCheck(etc_targets=targets, dns=dns)
    ports, port_map = _port_mappings(task)
    found = operator_conflist(driver)
    conflist = None
    if found is not None:
        path, conflist = found
        if ports and not any(isinstance(p.get("capabilities"), dict) and p["capabilities"].get("portMappings")
                             for p in conflist["plugins"]):
            raise _conflist_error(path, "has no plugin with the portMappings capability, so the task's "
                                        "ports (resources.ports) cannot be published")
    return NetCheck(etc_targets=targets, own_network=True, ports=ports, port_map=port_map, dns=dns,
                    conflist=conflist)


def _host_hosts_with_extras(etc_dir: str, tc: TaskConfig) -> str:
    """A copy of the host's /etc/hosts with the job's extra_hosts appended."""
    extras = [parse_extra_host(f"{h.host}:{h.ip}").line() for h in tc.extra_hosts]  # checked before
    with open("/etc/hosts", encoding="utf-8", errors="replace") as f:
        base = f.read()
    if base and not base.endswith("\n"):
        base += "\n"
    path = os.path.join(etc_dir, "hosts")
    write_in_place(path, base + "# extra_hosts (containerd-driver)\n" + "\n".join(extras) + "\n")
    return path


def plan_network(task: driver_pb2.TaskConfig, tc: TaskConfig, container_id: str, *,
                 namespace: str = "", driver: DriverConfig | None = None,
                 checked: NetCheck | None = None) -> TaskNetPlan:
    """Decide the task's network and create what the driver owns (its netns, CNI
    attachment, /etc files). On failure everything made here is removed again.
    `checked`: check_network()'s result when the caller ran it already (StartTask
    does, before the pull). Without `namespace` (validation, unit tests) no CNI
    network is set up."""
    if checked is None:
        checked = check_network(task, tc, driver)
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
    mode = spec.mode if spec is not None else _Mode.HOST
    netns_path: str | None = None
    ip: str | None = None
    net_id = own_netns = ""
    port_map: dict[str, int] = {}
    ipv6 = True
    if mode == _Mode.GROUP and spec is not None:
        netns_path = spec.path
        if spec.HasField("hostsConfig"):
            hostname = tc.hostname or spec.hostsConfig.hostname or hostname
            ip = spec.hostsConfig.address or None
    elif mode == _Mode.NONE and namespace:
        own_netns = str(net.create_netns(net.netns_name_for(net.attachment_id(namespace, container_id)),
                                         exist_ok=True))
        netns_path = own_netns
    elif namespace and checked.own_network:
        port_map = dict(checked.port_map)
        net_id = net.attachment_id(namespace, container_id)
        config = bridge_config(driver)
        net.destroy_sandbox(net_id, config=config)  # a crash may have left one behind
        att = net.create_sandbox(net_id, ports=checked.ports, config=config, conflist=checked.conflist)
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
            dns=checked.dns,
            ipv6=ipv6 if net_id else True,
        )
    except BaseException:
        release_network(plan)
        raise
    by_target = {"/etc/hosts": str(files.hosts), "/etc/hostname": str(files.hostname),
                 "/etc/resolv.conf": str(files.resolv_conf)}
    return replace(plan, etc_mounts=tuple((by_target[t], t) for t in checked.etc_targets))


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
