"""Nomad's TaskConfig + the job's validated config -> a nomad_ctr.ContainerSpec.

Process semantics (those of the Roblox driver, which our users' jobs were written for):
- `command` set: argv = [command, *args]; the image's ENTRYPOINT and CMD are not used.
- `entrypoint` set: it replaces the image ENTRYPOINT; CMD becomes [command?, *args]
  (the image CMD is dropped, as with docker's --entrypoint).
- only `args`: they replace the image CMD and follow the image ENTRYPOINT.
- nothing: the image's ENTRYPOINT + CMD.

Relative mount sources are resolved inside the task dir and may not leave it (no
`..`, no symlink pointing outside). Bad input raises ConfigError (INVALID_ARGUMENT).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field

from nomad_ctr import ContainerSpec, Device, Mount, errors
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import ConfigError, DriverConfig, MountConfig, TaskConfig
from nomad_ctr.net import default_hostname

__all__ = [
    "LABEL_PREFIX",
    "NetPlan",
    "build_spec",
    "container_id_for",
    "default_task_hostname",
    "task_dir",
    "task_labels",
]

LABEL_PREFIX = "com.hashicorp.nomad."
MAX_ID = 76
_ID_PART = re.compile(r"[^A-Za-z0-9]+")
_PROPAGATION = {"": "rprivate", "private": "rprivate", "host-to-task": "rslave", "bidirectional": "rshared"}
MIB = 1 << 20


@dataclass(frozen=True)
class NetPlan:
    """The network step's decision: which netns, and /etc files to mount."""

    host_network: bool = False
    netns_path: str | None = None
    etc_mounts: tuple[tuple[str, str], ...] = ()  # (host path, container path), read-only
    hostname: str | None = None
    etc_dir: str = ""  # generated files live here (removed on destroy)
    notes: tuple[str, ...] = field(default=())


def _slug(text: str, limit: int) -> str:
    return _ID_PART.sub("-", text).strip("-")[:limit].strip("-")


def container_id_for(alloc_id: str, task_name: str) -> str:
    """Deterministic, valid for containerd (^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$, <= 76)."""
    digest = hashlib.sha256(f"{alloc_id}\x00{task_name}".encode()).hexdigest()[:10]
    parts = [p for p in (_slug(alloc_id, 36), _slug(task_name, 24), digest) if p]
    cid = ".".join(parts)
    return cid[:MAX_ID]


def default_task_hostname(task: driver_pb2.TaskConfig) -> str:
    return default_hostname(f"{task.name}-{task.alloc_id[:8]}" if task.alloc_id else task.name or "task")


def task_dir(task: driver_pb2.TaskConfig) -> str:
    return os.path.join(task.alloc_dir, task.name)


def task_labels(task: driver_pb2.TaskConfig) -> dict[str, str]:
    """Ownership labels (a future reconciler finds our containers by them)."""
    return {
        LABEL_PREFIX + "alloc_id": task.alloc_id,
        LABEL_PREFIX + "task_name": task.name,
        LABEL_PREFIX + "task_id": task.id,
        LABEL_PREFIX + "job_name": task.job_name,
        LABEL_PREFIX + "job_id": task.job_id,
        LABEL_PREFIX + "task_group": task.task_group_name,
        LABEL_PREFIX + "namespace": task.namespace,
    }


def _process(tc: TaskConfig) -> dict[str, object]:
    if tc.entrypoint is not None:
        cmd = ([tc.command] if tc.command else []) + list(tc.args)
        return {"entrypoint": tc.entrypoint, "command": tuple(cmd)}
    if tc.command:
        return {"args": (tc.command, *tc.args)}
    if tc.args:
        return {"command": tc.args}
    return {}


def _inside(base: str, path: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _resolve_source(task: driver_pb2.TaskConfig, index: int, m: MountConfig) -> str:
    source = m.source or ""
    if source.startswith("/"):
        if not os.path.exists(source):  # else runc fails at start, after the pull
            raise ConfigError("task", f"mounts[{index}].source", "does not exist on the host", source)
        return source
    base = os.path.realpath(task_dir(task))
    resolved = os.path.realpath(os.path.join(base, source))
    if not _inside(base, resolved):
        raise ConfigError("task", f"mounts[{index}].source", "resolves outside the task directory", source)
    if not os.path.exists(resolved):
        raise ConfigError("task", f"mounts[{index}].source", f"does not exist in the task directory ({resolved})", source)
    return resolved


def _config_mount(task: driver_pb2.TaskConfig, index: int, m: MountConfig) -> Mount:
    if m.type == "tmpfs":
        return Mount("tmpfs", "tmpfs", m.target, m.options or ("nosuid", "nodev"))
    options = list(m.options)
    if not any(o in ("bind", "rbind") for o in options):
        options.insert(0, "rbind")
    if not any(o in ("ro", "rw") for o in options):
        options.append("rw")
    return Mount("bind", _resolve_source(task, index, m), m.target, tuple(options))


def _alloc_mounts(task: driver_pb2.TaskConfig) -> list[Mount]:
    if not task.alloc_dir:
        return []
    tdir = task_dir(task)
    pairs = [
        (os.path.join(task.alloc_dir, "alloc"), "/alloc"),
        (os.path.join(tdir, "local"), "/local"),
        (os.path.join(tdir, "secrets"), "/secrets"),
    ]
    out = []
    for source, dest in pairs:
        os.makedirs(source, exist_ok=True)
        out.append(Mount.bind(source, dest))
    return out


def _volume_mounts(task: driver_pb2.TaskConfig) -> list[Mount]:
    out = []
    for i, m in enumerate(task.mounts):
        if not m.host_path.startswith("/") or not m.task_path.startswith("/"):
            raise ConfigError("task", f"volume_mount[{i}]", "needs absolute host and task paths",
                              f"{m.host_path}:{m.task_path}")
        propagation = _PROPAGATION.get(m.propagation_mode)
        if propagation is None:
            raise ConfigError("task", f"volume_mount[{i}].propagation_mode", "is not private, host-to-task or bidirectional",
                              m.propagation_mode)
        out.append(Mount("bind", m.host_path, m.task_path, ("rbind", "ro" if m.readonly else "rw", propagation)))
    return out


MAX_SECCOMP_PROFILE = 1 << 20


def _check_seccomp_profile(path: str | None) -> None:
    """Refuse a missing or unreadable profile now, naming it, rather than at create."""
    if path is None:
        return
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError("task", "seccomp_profile", f"cannot be read ({exc.strerror})", path) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("task", "seccomp_profile", "is not a regular file", path)
    if st.st_size > MAX_SECCOMP_PROFILE:
        raise ConfigError("task", "seccomp_profile", "is larger than 1 MiB", path)
    try:
        with open(path, "rb") as f:
            profile = json.loads(f.read(MAX_SECCOMP_PROFILE + 1))
    except OSError as exc:
        raise ConfigError("task", "seccomp_profile", f"cannot be read ({exc.strerror})", path) from None
    except ValueError:
        raise ConfigError("task", "seccomp_profile", "is not a JSON seccomp profile", path) from None
    if not isinstance(profile, dict):
        raise ConfigError("task", "seccomp_profile", "is not a JSON seccomp profile (want an object)", path)


def _devices(task: driver_pb2.TaskConfig, tc: TaskConfig) -> list[Device]:
    for i, path in enumerate(tc.devices):  # else containerd refuses it at create, after the pull
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise ConfigError("task", f"devices[{i}]", f"cannot be used ({exc.strerror})", path) from None
        if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            raise ConfigError("task", f"devices[{i}]", "is not a device node", path)
    out = [Device(path) for path in tc.devices]
    for d in task.devices:
        out.append(Device(d.host_path, d.task_path or None, d.cgroup_permissions or "rwm"))
    return out


def _resources(task: driver_pb2.TaskConfig) -> dict[str, object]:
    res = task.resources
    out: dict[str, object] = {}
    linux = res.linux_resources
    shares = linux.cpu_shares or res.allocated_resources.cpu.cpu_shares
    if shares > 0:
        out["cpu_shares"] = max(2, min(262144, int(shares)))
    if linux.cpuset_cpus:
        out["cpuset_cpus"] = linux.cpuset_cpus
    mem = res.allocated_resources.memory
    memory_mb, max_mb = int(mem.memory_mb), int(mem.memory_max_mb)
    if max_mb > 0:
        limit_mb = max(max_mb, memory_mb)
    elif max_mb < 0:  # memory_max = -1: no hard limit, only the reservation
        limit_mb = 0
    else:
        limit_mb = memory_mb
    if limit_mb == 0 and max_mb == 0 and linux.memory_limit_bytes > 0:
        out["memory_limit"] = int(linux.memory_limit_bytes)
    elif limit_mb > 0:
        out["memory_limit"] = limit_mb * MIB
    if memory_mb > 0:
        out["memory_reservation"] = memory_mb * MIB
    return out


_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?")


def _check_user_env(task: driver_pb2.TaskConfig) -> None:
    """The task's user and env come from Nomad's task block: name them as the job does."""
    if task.user and (len(task.user) > 256 or not _USER.fullmatch(task.user)):
        raise ConfigError("task", "user", "must be a name or uid, optionally :group or :gid", task.user)
    for key, value in task.env.items():
        if not key or "=" in key or "\x00" in key:
            raise ConfigError("task", "env", "is not an environment variable name (no '=' or NUL)", key)
        if "\x00" in value:  # env values are not shown: they may be secrets
            raise ConfigError("task", f"env.{key}", "must not contain a NUL character")


def _unique_targets(mounts: list[tuple[Mount, str]]) -> list[Mount]:
    """Refuse two mounts on one container path, naming the job's field that clashes."""
    driver_owned = "a path the driver mounts (alloc, local, secrets, /etc/hosts, /etc/resolv.conf, /etc/hostname)"
    seen: dict[str, tuple[str, str]] = {}  # normalised target -> (job field or "", target as given)
    for m, name in mounts:
        target = os.path.normpath(m.destination)
        if target in seen:
            first, first_value = seen[target]
            if name:
                raise ConfigError("task", name, f"is already mounted by {first or driver_owned}", m.destination)
            # a driver mount after the job's (the generated /etc files): show the job's value
            raise ConfigError("task", first or "mounts", f"is already mounted by {driver_owned}", first_value)
        seen[target] = (name, m.destination)
    return [m for m, _ in mounts]


def build_spec(task: driver_pb2.TaskConfig, tc: TaskConfig, driver: DriverConfig, net: NetPlan) -> ContainerSpec:
    """The container spec; ConfigError names the field of anything invalid."""
    _check_seccomp_profile(tc.seccomp_profile)
    _check_user_env(task)
    mounts = _unique_targets([
        *((m, "") for m in _alloc_mounts(task)),
        *((m, f"volume_mount[{i}]") for i, m in enumerate(_volume_mounts(task))),
        *((_config_mount(task, i, m), f"mounts[{i}].target") for i, m in enumerate(tc.mounts)),
        *((Mount("bind", src, dst, ("rbind", "ro")), "") for src, dst in net.etc_mounts),
    ])
    fields: dict[str, object] = {
        "env": dict(task.env),
        "cwd": tc.cwd,
        "user": task.user or None,
        "hostname": None if net.host_network else (tc.hostname or net.hostname or default_task_hostname(task)),
        "mounts": tuple(mounts),
        "host_network": net.host_network,
        "netns_path": net.netns_path,
        "host_pid": tc.pid_mode == "host",
        "privileged": tc.privileged,
        "cap_add": tc.cap_add,
        "cap_drop": tc.cap_drop,
        "devices": tuple(_devices(task, tc)),
        "seccomp": tc.seccomp and not tc.privileged,
        "seccomp_profile": tc.seccomp_profile if not tc.privileged else None,
        "readonly_rootfs": tc.readonly_rootfs,
        "shm_size": tc.shm_size,
        "sysctls": dict(tc.sysctl),
        "pids_limit": tc.pids_limit,
    }
    fields.update(_process(tc))
    fields.update(_resources(task))
    try:
        return ContainerSpec(**fields)  # type: ignore[arg-type]
    except errors.InvalidArgument as exc:
        raise ConfigError("task", "(container spec)", str(exc)) from None
