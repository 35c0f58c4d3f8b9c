"""The network step of StartTask: which network namespace, and which /etc files.

One seam for the networking track: plan_network() returns the decision. Today:
- host_network (or a HOST isolation spec): the host's netns, /etc/hosts and
  /etc/resolv.conf mounted read-only;
- a GROUP isolation spec with a path (Nomad made the netns): join it;
- otherwise the container's own netns (loopback only) -- CNI comes later.
Outside the host netns we generate hosts (with the container's hostname and the
job's extra_hosts), hostname, and resolv.conf (the job's DNS config, or a filtered
copy of the host's when host_dns is true) into a driver-owned directory.
"""

from __future__ import annotations

import os
import shutil
import stat

from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import ConfigError, TaskConfig
from nomad_ctr.driver.specbuild import NetPlan, default_task_hostname, task_dir
from nomad_ctr.net import build_resolv_conf, write_etc_files

__all__ = ["HOST_ETC_MOUNTS", "etc_dir_for", "plan_network", "remove_etc_dir"]

_Mode = driver_pb2.NetworkIsolationSpec
HOST_ETC_MOUNTS = (("/etc/hosts", "/etc/hosts"), ("/etc/resolv.conf", "/etc/resolv.conf"))
ETC_DIR_NAME = "containerd-driver-etc"  # in the task dir, which the container cannot see


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


def plan_network(task: driver_pb2.TaskConfig, tc: TaskConfig, container_id: str) -> NetPlan:
    spec = task.network_isolation_spec if task.HasField("network_isolation_spec") else None
    if tc.host_network:
        return NetPlan(host_network=True, etc_mounts=HOST_ETC_MOUNTS)

    hostname = tc.hostname or default_task_hostname(task)
    netns_path = None
    ip = None
    if spec is not None and spec.mode == _Mode.GROUP:
        if not spec.path:
            raise ConfigError("task", "network_isolation_spec.path", "is empty for a group network")
        netns_path = spec.path
        if spec.HasField("hostsConfig"):
            hostname = tc.hostname or spec.hostsConfig.hostname or hostname
            ip = spec.hostsConfig.address or None

    dns = None
    mount_resolv = tc.host_dns
    if task.HasField("dns") and (task.dns.servers or task.dns.searches or task.dns.options):
        try:
            dns = build_resolv_conf(task.dns.servers, task.dns.searches, task.dns.options)
        except ValueError as exc:
            raise ConfigError("task", "dns", str(exc)) from None
        mount_resolv = True

    etc_dir = etc_dir_for(task, container_id)
    _fresh_dir(etc_dir)
    files = write_etc_files(
        etc_dir,
        hostname=hostname,
        ip=ip,
        extra_hosts=[f"{h.host}:{h.ip}" for h in tc.extra_hosts],
        dns=dns,
    )
    mounts = [(str(files.hosts), "/etc/hosts"), (str(files.hostname), "/etc/hostname")]
    if mount_resolv:
        mounts.append((str(files.resolv_conf), "/etc/resolv.conf"))
    return NetPlan(netns_path=netns_path, etc_mounts=tuple(mounts), hostname=hostname, etc_dir=etc_dir)
