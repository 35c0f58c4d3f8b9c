"""ContainerSpec, Mount and Device: frozen, validated descriptions of a container.

Every field is checked when the object is built, so a bad value fails in Python with an
errors.InvalidArgument naming the field and the value, before the bridge is called.
`to_bridge()` gives the JSON Spec of gobridge/CONTRACT.md (unset fields left out).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nomad_ctr._invalid import invalid

__all__ = ["CAPABILITIES", "ContainerSpec", "Device", "Mount", "parse_size"]

# Linux capabilities known to runc (capability.h, up to CAP_CHECKPOINT_RESTORE).
CAPABILITIES = frozenset(
    "CAP_" + name
    for name in ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]
)

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_ENV_KEY_RE = re.compile(r"^[^=\x00]+$")
_HOSTNAME_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^{_HOSTNAME_LABEL}(?:\.{_HOSTNAME_LABEL})*$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
_CPUSET_RE = re.compile(r"^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$")
_SYSCTL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$")
_MOUNT_TYPE_RE = re.compile(r"^[a-z0-9_.-]+$")
_MIN_MEMORY = 4 << 20  # below this runc's own overhead kills the container at start


def parse_size(value: int | str, field: str) -> int:
    """Bytes from an int or a string such as "64m", "1GiB", "512k" (binary units)."""
    if isinstance(value, bool):
        raise invalid(field, value, "a size is a number of bytes or a string like '64m'")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m and (m.group(3) == "" or m.group(3).lower() in ("b", "ib")):
            return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
    raise invalid(field, value, "a size is a number of bytes or a string like '64m'")


# --- field checkers: each returns the normalised value or raises InvalidArgument ---


def _check_str(value: Any, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise invalid(field, value, f"must be a string, not {type(value).__name__}")
    if not allow_empty and not value:
        raise invalid(field, value, "must not be empty")
    if "\x00" in value:
        raise invalid(field, value, "must not contain NUL bytes")
    return str(value)


def _check_abs_path(value: Any, field: str) -> str:
    path = _check_str(value, field)
    if not path.startswith("/"):
        raise invalid(field, value, "must be an absolute path")
    return path


def _check_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, value, "must be True or False")
    return value


def _check_int(value: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, value, "must be an integer")
    if lo is not None and value < lo:
        raise invalid(field, value, f"must be at least {lo}")
    if hi is not None and value > hi:
        raise invalid(field, value, f"must be at most {hi}")
    return value


def _check_str_list(value: Any, field: str, *, allow_empty_list: bool = True) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)):
        raise invalid(field, value, "must be a list of strings, not a single string")
    if not isinstance(value, Iterable):
        raise invalid(field, value, "must be a list of strings")
    items = tuple(value)
    if not allow_empty_list and not items:
        raise invalid(field, value, "must not be an empty list")
    for i, item in enumerate(items):
        _check_str(item, f"{field}[{i}]", allow_empty=True)
    return items


def _check_str_map(value: Any, field: str, key_re: re.Pattern[str] | None = None) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise invalid(field, value, "must be a mapping of strings to strings")
    out: dict[str, str] = {}
    for key, val in value.items():
        _check_str(key, f"{field} key")
        if key_re is not None and not key_re.match(key):
            raise invalid(f"{field} key", key, "is not a valid name")
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            val = str(val)
        out[key] = _check_str(val, f"{field}[{key!r}]", allow_empty=True)
    return out


def _check_capabilities(value: Any, field: str) -> tuple[str, ...]:
    names = _check_str_list(value, field)
    out = []
    for i, name in enumerate(names):
        upper = name.strip().upper()
        if upper == "ALL":
            out.append("ALL")
            continue
        full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
        if full not in CAPABILITIES:
            raise invalid(f"{field}[{i}]", name, "unknown Linux capability")
        out.append(full)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Mount:
    """A filesystem mounted into the container (bind, tmpfs, ...)."""

    type: str
    source: str
    destination: str
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_str(self.type, "mount.type")
        if not _MOUNT_TYPE_RE.match(self.type):
            raise invalid("mount.type", self.type, "not a filesystem type name")
        _check_str(self.source, "mount.source")
        if self.type == "bind":
            _check_abs_path(self.source, "mount.source")
        _check_abs_path(self.destination, "mount.destination")
        if self.destination != "/" and self.destination.rstrip("/") == "":
            raise invalid("mount.destination", self.destination, "must not be /")
        object.__setattr__(self, "options", _check_str_list(self.options, "mount.options"))

    @classmethod
    def bind(cls, source: str, destination: str, *, readonly: bool = False) -> Mount:
        options = ("rbind", "ro" if readonly else "rw")
        return cls("bind", source, destination, options)

    @classmethod
    def tmpfs(cls, destination: str, *, size: int | str | None = None) -> Mount:
        options = ["nosuid", "nodev", "noexec"]
        if size is not None:
            options.append(f"size={parse_size(size, 'mount.size')}")
        return cls("tmpfs", "tmpfs", destination, tuple(options))

    def to_bridge(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "source": self.source,
            "destination": self.destination,
            "options": list(self.options),
        }


@dataclass(frozen=True)
class Device:
    """A host device node made available in the container."""

    host_path: str
    container_path: str | None = None  # None: same path as on the host
    permissions: str = "rwm"

    def __post_init__(self) -> None:
        _check_abs_path(self.host_path, "device.host_path")
        if self.container_path is None:
            object.__setattr__(self, "container_path", self.host_path)
        _check_abs_path(self.container_path, "device.container_path")
        perms = self.permissions
        if (
            not isinstance(perms, str)
            or not perms
            or set(perms) - set("rwm")
            or len(set(perms)) != len(perms)
        ):
            raise invalid("device.permissions", perms, "must be a combination of r, w and m")

    def to_bridge(self) -> dict[str, Any]:
        return {
            "host_path": self.host_path,
            "container_path": self.container_path,
            "permissions": self.permissions,
        }


@dataclass(frozen=True)
class ContainerSpec:
    """What to run and with which isolation and limits.

    Process: `args` is the full argv and overrides the image's ENTRYPOINT and CMD;
    otherwise `entrypoint` replaces ENTRYPOINT (and drops the image CMD) and `command`
    replaces CMD. `env` is added over the image's environment.
    Sizes (memory_*, shm_size) take bytes or strings like "64m".
    """

    args: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    user: str | None = None
    hostname: str | None = None
    mounts: tuple[Mount, ...] = ()
    host_network: bool = False
    host_pid: bool = False
    netns_path: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    devices: tuple[Device, ...] = ()
    seccomp: bool = False
    seccomp_profile: str | None = None
    readonly_rootfs: bool = False
    shm_size: int | None = None
    sysctls: dict[str, str] = field(default_factory=dict)
    pids_limit: int | None = None
    cgroup_parent: str | None = None
    memory_limit: int | None = None
    memory_reservation: int | None = None
    memory_swap: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    oom_score_adj: int | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    no_new_privileges: bool = False

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)


        for name in ("args", "entrypoint", "command"):
            value = getattr(self, name)
            if value is not None:
                set_(name, _check_str_list(value, name, allow_empty_list=(name == "command")))
        if self.args is not None and (self.entrypoint is not None or self.command is not None):
            raise invalid(
                "args", list(self.args), "args replaces entrypoint and command; give either"
            )
        if self.args is not None and self.args[0] == "":
            raise invalid("args[0]", "", "the program to run must not be empty")

        set_("env", _check_str_map(self.env, "env", _ENV_KEY_RE))
        if self.cwd is not None:
            _check_abs_path(self.cwd, "cwd")
        if self.user is not None:
            user = str(self.user) if isinstance(self.user, int) and not isinstance(self.user, bool) else self.user
            _check_str(user, "user")
            if not _USER_RE.match(user):
                raise invalid("user", self.user, "must be 'name', 'uid', 'uid:gid' or 'name:group'")
            set_("user", user)
        if self.hostname is not None:
            _check_str(self.hostname, "hostname")
            if len(self.hostname) > 64 or not _HOSTNAME_RE.match(self.hostname):
                raise invalid("hostname", self.hostname, "not a valid host name (RFC 1123, <= 64 chars)")

        set_("mounts", self._check_items(self.mounts, "mounts", Mount))
        dests = [m.destination.rstrip("/") or "/" for m in self.mounts]
        for i, dest in enumerate(dests):
            if dest in dests[:i]:
                raise invalid(f"mounts[{i}].destination", dest, "mounted twice")
        set_("devices", self._check_items(self.devices, "devices", Device))

        for name in ("host_network", "host_pid", "privileged", "seccomp", "readonly_rootfs",
                     "tty", "no_new_privileges"):
            _check_bool(getattr(self, name), name)
        if self.netns_path is not None:
            _check_abs_path(self.netns_path, "netns_path")
            if self.host_network:
                raise invalid("netns_path", self.netns_path, "cannot be combined with host_network=True")
        set_("cap_add", _check_capabilities(self.cap_add, "cap_add"))
        set_("cap_drop", _check_capabilities(self.cap_drop, "cap_drop"))
        if self.seccomp_profile is not None:
            _check_abs_path(self.seccomp_profile, "seccomp_profile")

        for name in ("shm_size", "memory_limit", "memory_reservation", "memory_swap"):
            value = getattr(self, name)
            if value is not None:
                set_(name, parse_size(value, name))
        if self.shm_size is not None:
            _check_int(self.shm_size, "shm_size", lo=1)
        if self.memory_limit is not None:
            _check_int(self.memory_limit, "memory_limit", lo=_MIN_MEMORY)
        if self.memory_reservation is not None:
            _check_int(self.memory_reservation, "memory_reservation", lo=1)
            if self.memory_limit is not None and self.memory_reservation > self.memory_limit:
                raise invalid("memory_reservation", self.memory_reservation,
                              f"must not exceed memory_limit ({self.memory_limit})")
        if self.memory_swap is not None:
            if self.memory_limit is None:
                raise invalid("memory_swap", self.memory_swap, "needs memory_limit")
            if self.memory_swap != -1 and self.memory_swap < self.memory_limit:
                raise invalid("memory_swap", self.memory_swap,
                              "is memory plus swap: -1 (unlimited) or at least memory_limit")

        set_("sysctls", _check_str_map(self.sysctls, "sysctls", _SYSCTL_RE))
        if self.pids_limit is not None:
            _check_int(self.pids_limit, "pids_limit", lo=1)
        if self.cgroup_parent is not None:
            _check_str(self.cgroup_parent, "cgroup_parent")
        if self.cpu_shares is not None:
            _check_int(self.cpu_shares, "cpu_shares", lo=2, hi=262144)
        if self.cpu_period is not None:
            _check_int(self.cpu_period, "cpu_period", lo=1000, hi=1_000_000)
        if self.cpu_quota is not None:
            _check_int(self.cpu_quota, "cpu_quota", lo=1000)
        for name in ("cpuset_cpus", "cpuset_mems"):
            value = getattr(self, name)
            if value is not None:
                _check_str(value, name)
                if not _CPUSET_RE.match(value):
                    raise invalid(name, value, "must be a list like '0-3,5'")
        if self.oom_score_adj is not None:
            _check_int(self.oom_score_adj, "oom_score_adj", lo=-1000, hi=1000)
        set_("annotations", _check_str_map(self.annotations, "annotations"))

    @staticmethod
    def _check_items(value: Any, field: str, kind: type) -> tuple[Any, ...]:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            raise invalid(field, value, f"must be a list of {kind.__name__}")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                try:
                    item = kind(**item)
                except TypeError as exc:
                    raise invalid(f"{field}[{i}]", item, f"not a {kind.__name__}: {exc}") from None
            if not isinstance(item, kind):
                raise invalid(f"{field}[{i}]", item, f"must be a {kind.__name__}")
            out.append(item)
        return tuple(out)

    def replace(self, **changes: Any) -> ContainerSpec:
        """A new spec with `changes` applied (and validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            name = min(unknown)
            raise invalid(name, changes[name], "not a ContainerSpec field")
        return dataclasses.replace(self, **changes)

    def to_bridge(self) -> dict[str, Any]:
        """The bridge's JSON Spec: only fields that differ from their defaults."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or value is False or value == () or value == {}:
                continue
            if f.name in ("mounts", "devices"):
                value = [item.to_bridge() for item in value]
            elif f.name == "env":
                value = [f"{k}={v}" for k, v in value.items()]
            elif f.name in ("cap_add", "cap_drop"):
                value = _expand_all(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        if self.command == ():  # an explicit empty CMD is meaningful: keep it
            out["command"] = []
        return out


def _expand_all(caps: tuple[str, ...]) -> list[str]:
    if "ALL" in caps:
        return sorted(CAPABILITIES)
    return list(caps)
