"""Typed, validated driver and task configuration.

    parse_driver_config(set_config_request.msgpack_config) -> DriverConfig
    parse_task_config(task_config.msgpack_driver_config)   -> TaskConfig
    check_task_allowed(task, driver)                       # operator gates

Both parsers decode cty msgpack against the published schema (config_schema.py),
apply defaults for values Nomad left null, and raise ConfigError (a ValueError) with a
one-line message naming the field and the value before anything has side effects.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeVar

from nomad_ctr.driver import cty
from nomad_ctr.driver.config_schema import (
    DEFAULT_ADDRESS,
    DEFAULT_BRIDGE_SUBNET,
    DEFAULT_CNI_BIN_DIR,
    DEFAULT_CNI_CONF_DIR,
    DEFAULT_IMAGE_PULL_TIMEOUT,
    DEFAULT_NAMESPACE,
    driver_config_spec,
    task_config_spec,
)
from nomad_ctr.driver.config_values import (
    ConfigError,
    is_hostname,
    normalize_capability,
    parse_duration,
    parse_size,
)
from nomad_ctr.driver.hclspec import implied_type

__all__ = [
    "PRIVILEGED_NOT_ALLOWED",
    "ConfigError",
    "DriverConfig",
    "ExtraHost",
    "MountConfig",
    "NotAllowedError",
    "RegistryAuth",
    "TaskConfig",
    "check_task_allowed",
    "parse_driver_config",
    "parse_task_config",
]

MAX_PULL_TIMEOUT = 24 * 3600.0
MAX_STATS_INTERVAL = 3600.0
MIN_STATS_INTERVAL = 0.1
MAX_PIDS_LIMIT = 4_194_304  # the kernel's PID_MAX_LIMIT on 64-bit
MAX_SHM_SIZE = 1 << 40
MIN_SHM_SIZE = 1024  # containerd refuses a smaller /dev/shm at create
MAX_ARG_LEN = 128 * 1024 - 1  # bytes: execve's per-string limit (MAX_ARG_STRLEN) counts the NUL
MAX_ARGV_TOTAL = 1024 * 1024  # bytes of the whole command line, NULs included
MAX_LIST_ITEMS = 1024

_RUNTIME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*){2,}")
_RUNTIME_LAST = re.compile(r"v[0-9]+")
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_SYSCTL_KEY = re.compile(r"[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)+")
_REGISTRY_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
# image references: distribution's grammar, checked here so errors come in our format
_IMG_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMG_PATH = re.compile(rf"{_IMG_COMPONENT}(?:/{_IMG_COMPONENT})*")
_IMG_TAG = re.compile(r"[\w][\w.-]{0,127}")
_IMG_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}")
_IMG_MAX_NAME = 255

# sysctls that are namespaced (so a container may set them) outside the net.* tree
_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
        "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    }
)
_MOUNT_TYPES = ("volume", "bind", "tmpfs")
_BIND_OPTIONS = frozenset(
    {
        "ro", "rw", "bind", "rbind", "nosuid", "noexec", "nodev", "noatime",
        "nodiratime", "relatime", "strictatime", "private", "rprivate", "slave", "rslave",
    }
)
_TMPFS_OPTIONS = frozenset(
    {"ro", "rw", "nosuid", "noexec", "exec", "nodev", "noatime", "relatime", "strictatime"}
)
_TMPFS_KEYED = re.compile(r"(size|mode|uid|gid|nr_inodes)=(.*)", re.DOTALL)
_TMPFS_AMOUNT = re.compile(r"([0-9]+)([kKmMgGtTpPeE%]?)")
# the suffixes of the kernel's memparse(), which parses tmpfs' size and nr_inodes
_MEMPARSE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}
_FORBIDDEN_TARGETS = ("/proc", "/sys")
# resolved in the plugin's own process: a bind of these would hand out its open files
_SELF_PATHS = ("/proc/self", "/proc/thread-self", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr")


@dataclass(frozen=True)
class RegistryAuth:
    """registry: the one host[:port] the agent's credentials may go to (None: any)."""

    username: str
    password: str = field(repr=False)
    registry: str | None = None


@dataclass(frozen=True)
class DriverConfig:
    """The agent's plugin config block.

    stats_interval: seconds or None (follow Nomad's collection_interval).
    insecure_registries: registry hosts (host[:port]) that may be pulled over plain HTTP.
    """

    containerd_runtime: str
    enabled: bool = True
    stats_interval: float | None = None
    allow_privileged: bool = True
    auth: RegistryAuth | None = None
    address: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    insecure_registries: tuple[str, ...] = ()
    cni_bin_dir: str = DEFAULT_CNI_BIN_DIR
    cni_conf_dir: str = DEFAULT_CNI_CONF_DIR  # an operator's nomad-ctr.conflist here is the driver's network
    bridge_subnet: ipaddress.IPv4Network = ipaddress.IPv4Network(DEFAULT_BRIDGE_SUBNET)


@dataclass(frozen=True)
class MountConfig:
    """One `mounts` block. type: volume | bind | tmpfs (volume is a bind, as in Roblox).
    source: absolute host path, or relative to the task dir; None for tmpfs."""

    type: str
    target: str
    source: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtraHost:
    host: str
    ip: str


@dataclass(frozen=True)
class TaskConfig:
    """The job's task config block. Durations are seconds, sizes bytes, capabilities in
    OCI spelling (CAP_NET_ADMIN, or ALL for cap_drop). entrypoint None = image's."""

    image: str
    image_pull_timeout: float = 300.0
    command: str | None = None
    args: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cwd: str | None = None
    privileged: bool = False
    pids_limit: int | None = None
    pid_mode: str | None = None
    hostname: str | None = None
    host_dns: bool = True
    seccomp: bool = True
    seccomp_profile: str | None = None
    shm_size: int | None = None
    sysctl: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    readonly_rootfs: bool = False
    host_network: bool = False
    extra_hosts: tuple[ExtraHost, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    auth: RegistryAuth | None = None
    mounts: tuple[MountConfig, ...] = ()


# ---- decoding helpers --------------------------------------------------------------------

T = TypeVar("T")


class _Fields:
    """Typed access to one decoded object, with error messages in our format."""

    def __init__(self, scope: str, values: Mapping[str, Any], prefix: str = "") -> None:
        self.scope = scope
        self.values = values
        self.prefix = prefix

    def path(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, rule: str, value: Any = None, *, show_value: bool = True) -> ConfigError:
        if show_value:
            return ConfigError(self.scope, self.path(name), rule, value)
        return ConfigError(self.scope, self.path(name), rule)

    def raw(self, name: str) -> Any:
        value = self.values.get(name)
        if value is cty.UNKNOWN:
            raise ConfigError(self.scope, self.path(name), "value is not known")
        return value

    def text(self, name: str, default: str | None = None, *, secret: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        _check_text(self, name, value, secret=secret)
        return value

    def required_text(self, name: str, *, secret: bool = False) -> str:
        value = self.text(name, secret=secret)
        if value is None or value == "":
            raise self.fail(name, "is required", show_value=False)
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        return default if value is None else bool(value)

    def text_list(self, name: str, *, allow_empty_list: bool = True) -> tuple[str, ...] | None:
        value = self.raw(name)
        if value is None:
            return None
        if len(value) > MAX_LIST_ITEMS:
            raise self.fail(name, f"has more than {MAX_LIST_ITEMS} elements", show_value=False)
        if not value and not allow_empty_list:
            raise self.fail(name, "must not be an empty list", value)
        for i, item in enumerate(value):
            if item is cty.UNKNOWN:
                raise ConfigError(self.scope, f"{self.path(name)}[{i}]", "value is not known")
            if item is None:
                raise ConfigError(self.scope, f"{self.path(name)}[{i}]", "must not be null")
            _check_text(self, f"{name}[{i}]", item)
        return tuple(value)

    def each(
        self, name: str, fn: Callable[[str, str], T]
    ) -> tuple[T, ...]:
        """Apply fn(path, item) to each item of a string list."""
        items = self.text_list(name) or ()
        return tuple(fn(f"{self.path(name)}[{i}]", item) for i, item in enumerate(items))


def _check_text(f: _Fields, name: str, value: str, *, secret: bool = False) -> None:
    if "\x00" in value:
        if secret:
            raise f.fail(name, "must not contain a NUL character", show_value=False)
        raise f.fail(name, "must not contain a NUL character", value)


def _decode(scope: str, data: bytes, spec_type: cty.CtyType) -> dict[str, Any]:
    try:
        value = cty.decode(data or b"\x80", spec_type, wrapped_dynamic=False)
    except cty.CtyError as exc:
        raise ConfigError(scope, exc.path or "(config)", exc.message) from None
    if value is None:
        return {}
    if not isinstance(value, dict):  # pragma: no cover - object type guarantees a dict
        raise ConfigError(scope, "(config)", "must be an object")
    return value


def _duration(f: _Fields, name: str, lo: float, hi: float, default: str | None) -> float | None:
    text = f.text(name, default)
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise f.fail(name, str(exc), text) from None
    if seconds <= 0:
        raise f.fail(name, "must be positive", text)
    if seconds < lo:
        raise f.fail(name, f"must be at least {_human_seconds(lo)}", text)
    if seconds > hi:
        raise f.fail(name, f"must be at most {_human_seconds(hi)}", text)
    return seconds


def _human_seconds(s: float) -> str:
    if s >= 3600 and s % 3600 == 0:
        return f"{int(s // 3600)}h"
    if s >= 1 and s == int(s):
        return f"{int(s)}s"
    return f"{int(s * 1000)}ms"


def _auth(f: _Fields, name: str, *, with_registry: bool = False) -> RegistryAuth | None:
    value = f.raw(name)
    if value is None:
        return None
    sub = _Fields(f.scope, value, f.path(name))
    registry = sub.text("registry") if with_registry else None
    if registry is not None and not _REGISTRY_HOST.fullmatch(registry):
        raise sub.fail("registry", "is not a registry host[:port] like registry.example.com:5000", registry)
    # never echo the credentials, not even in errors
    return RegistryAuth(
        username=sub.required_text("username", secret=True),
        password=sub.required_text("password", secret=True),
        registry=registry.lower() if registry else None,
    )


def _absolute_path(f: _Fields, name: str, value: str) -> str:
    if not value.startswith("/"):
        raise f.fail(name, "must be an absolute path", value)
    if ".." in value.split("/"):
        raise f.fail(name, "must not contain '..'", value)
    return value


# ---- driver config -----------------------------------------------------------------------


def parse_driver_config(data: bytes) -> DriverConfig:
    """Decode SetConfig.msgpack_config; empty bytes mean "no config given"."""
    f = _Fields("driver", _decode("driver", data, _DRIVER_TYPE))

    runtime = f.required_text("containerd_runtime")
    if (
        len(runtime) > 128
        or not _RUNTIME_RE.fullmatch(runtime)
        or not _RUNTIME_LAST.fullmatch(runtime.rsplit(".", 1)[-1])
    ):
        raise f.fail(
            "containerd_runtime",
            "is not a containerd runtime name like io.containerd.runc.v2 (no paths)",
            runtime,
        )

    namespace = f.text("namespace", DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE
    if len(namespace) > 76 or not _NAMESPACE_RE.fullmatch(namespace):
        raise f.fail("namespace", "is not a containerd namespace name (letters, digits, . _ -)", namespace)

    address = f.text("address", DEFAULT_ADDRESS) or DEFAULT_ADDRESS
    address = address.removeprefix("unix://")
    _absolute_path(f, "address", address)
    if len(address.encode()) > 107:
        raise f.fail("address", "is longer than a unix socket path may be (107 bytes)", address)

    subnet_text = f.text("bridge_subnet", DEFAULT_BRIDGE_SUBNET) or DEFAULT_BRIDGE_SUBNET
    try:
        subnet = ipaddress.IPv4Network(subnet_text, strict=True)
    except ValueError:
        raise f.fail("bridge_subnet", "is not an IPv4 network like 172.26.80.0/20 (host bits zero)", subnet_text) from None
    if not 8 <= subnet.prefixlen <= 29:
        raise f.fail("bridge_subnet", "prefix length must be between /8 and /29", subnet_text)

    def registry(path: str, host: str) -> str:
        if not _REGISTRY_HOST.fullmatch(host):
            raise ConfigError("driver", path, "is not a registry host[:port]", host)
        return host

    return DriverConfig(
        containerd_runtime=runtime,
        enabled=f.flag("enabled", True),
        stats_interval=_duration(f, "stats_interval", MIN_STATS_INTERVAL, MAX_STATS_INTERVAL, None),
        allow_privileged=f.flag("allow_privileged", True),
        auth=_auth(f, "auth", with_registry=True),
        address=address,
        namespace=namespace,
        insecure_registries=f.each("insecure_registries", registry),
        cni_bin_dir=_absolute_path(f, "cni_bin_dir", f.text("cni_bin_dir") or DEFAULT_CNI_BIN_DIR),
        cni_conf_dir=_absolute_path(f, "cni_conf_dir", f.text("cni_conf_dir") or DEFAULT_CNI_CONF_DIR),
        bridge_subnet=subnet,
    )


# ---- task config -------------------------------------------------------------------------


def _image(f: _Fields) -> str:
    ref = f.required_text("image")
    if any(c.isspace() or not c.isprintable() for c in ref):
        raise f.fail("image", "must not contain whitespace or control characters", ref)
    rest, _, digest = ref.partition("@")
    if "@" in ref and not _IMG_DIGEST.fullmatch(digest):
        raise f.fail("image", "has a malformed digest (want algorithm:hex, e.g. sha256:<64 hex>)", ref)
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _REGISTRY_HOST.fullmatch(first):
            raise f.fail("image", "has a malformed registry host", ref)
        rest = remainder
    name, tag = rest, None
    colon, slash = rest.rfind(":"), rest.rfind("/")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _IMG_TAG.fullmatch(tag):
            raise f.fail("image", "has a malformed tag (letters, digits, _ . -; at most 128)", ref)
    if not _IMG_PATH.fullmatch(name):
        raise f.fail("image", "is not an image reference (lower-case name[:tag][@digest])", ref)
    if len(ref) - len(rest) + len(name) > _IMG_MAX_NAME:
        raise f.fail("image", f"repository name is longer than {_IMG_MAX_NAME} characters", ref)
    return ref


def _whole_number(f: _Fields, name: str, lo: int, hi: int) -> int | None:
    value = f.raw(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, Decimal) and value == value.to_integral_value():
        if value.adjusted() >= 30:  # far out of range; do not build a huge int
            raise f.fail(name, f"must be between {lo} and {hi}", value)
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise f.fail(name, "must be a whole number", value)
    if not lo <= value <= hi:
        raise f.fail(name, f"must be between {lo} and {hi}", value)
    return value


def _sysctl_entries(f: _Fields) -> list[tuple[str, Any]]:
    """`sysctl` arrives as a map (`sysctl = {...}`) or a list of maps (block syntax)."""
    value = f.raw("sysctl")
    if value is None:
        return []
    maps = [value] if isinstance(value, dict) else value
    if not isinstance(maps, list) or not all(isinstance(m, dict) or m is None for m in maps):
        raise f.fail("sysctl", 'must be a map like { "net.core.somaxconn" = "16384" }', value)
    return [(k, v) for m in maps if m for k, v in m.items()]


def _sysctl_value(path: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or value is cty.UNKNOWN:
        raise ConfigError("task", path, "must be a string", value)
    if isinstance(value, int) or (isinstance(value, Decimal) and value == value.to_integral_value()):
        return str(int(value))
    raise ConfigError("task", path, "must be a string", value)


def _sysctl(f: _Fields, host_network: bool) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    for key, raw in _sysctl_entries(f):
        path = f"sysctl.{key}"
        if not _SYSCTL_KEY.fullmatch(key) or len(key) > 256:
            raise ConfigError(f.scope, "sysctl", "is not a sysctl name like net.core.somaxconn", key)
        val = _sysctl_value(path, raw)
        if any(c in val for c in "\x00\n\r") or len(val) > 4096:
            raise ConfigError(f.scope, path, "must be one line of at most 4096 characters", val)
        if key.startswith("net."):
            if host_network:
                raise ConfigError(f.scope, path, "cannot be set with host_network = true (it would change the host)", val)
        elif not (key in _IPC_SYSCTLS or key.startswith("fs.mqueue.")):
            raise ConfigError(f.scope, "sysctl", "is not namespaced (only net.*, fs.mqueue.* and IPC kernel.* sysctls are)", key)
        merged[key] = val
    return MappingProxyType(merged)


def _extra_host(path: str, item: str) -> ExtraHost:
    host, sep, ip = item.partition(":")
    if not sep or not is_hostname(host, 253):
        raise ConfigError("task", path, 'is not "host:IP"', item)
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise ConfigError("task", path, 'is not "host:IP" (bad IP address)', item) from None
    return ExtraHost(host=host, ip=str(addr))


def _capabilities(f: _Fields, name: str, allow_all: bool) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(f.text_list(name) or ()):
        path = f"{name}[{i}]"
        try:
            cap = normalize_capability(item)
        except ValueError as exc:
            raise ConfigError(f.scope, path, str(exc), item) from None
        if cap == "ALL" and not allow_all:
            raise ConfigError(f.scope, path, "is not allowed here (use privileged = true)", item)
        if cap not in out:
            out.append(cap)
    return tuple(out)


def _device(path: str, item: str) -> str:
    if not item.startswith("/dev/") or ".." in item.split("/") or "//" in item:
        raise ConfigError("task", path, "must be a device path under /dev/", item)
    return item


MAX_TMPFS_ID = 4_294_967_294  # (uid_t)-1 means "no change"
MAX_TMPFS_AMOUNT = 1 << 40  # size in bytes, nr_inodes: far above any real need, below the kernel's caps


def _check_tmpfs_value(scope: str, path: str, opt: str, key: str, value: str) -> None:
    """size/nr_inodes 0 would mean unlimited; size=N% is of the host's RAM (as Linux
    allows, for size only); mode is octal; ids fit a uid_t."""
    if key in ("size", "nr_inodes"):
        amount_match = _TMPFS_AMOUNT.fullmatch(value)
        if amount_match is None:
            also = ", or N% of the host's memory" if key == "size" else ""
            raise ConfigError(scope, path, f"{key} must be a whole number with an optional k, m, g or t{also}", opt)
        number, unit = amount_match.group(1), amount_match.group(2).lower()
        big = len(number.lstrip("0")) > 24  # past any limit; do not build a huge int
        if unit == "%":
            if key != "size":
                raise ConfigError(scope, path, "nr_inodes takes a number with an optional k, m, g or t, not %", opt)
            if big or not 1 <= int(number) <= 100:
                raise ConfigError(scope, path, "size in % of the host's memory must be from 1% to 100%", opt)
            return
        amount = MAX_TMPFS_AMOUNT + 1 if big else int(number) * _MEMPARSE[unit]
        if amount == 0:
            raise ConfigError(scope, path, f"{key}=0 would make the tmpfs unlimited", opt)
        if amount > MAX_TMPFS_AMOUNT:
            raise ConfigError(scope, path, f"{key} must be at most 1T", opt)
    elif key == "mode":
        if not value.isdigit() or set(value) - set("01234567") or len(value) > 8 or int(value, 8) > 0o7777:
            raise ConfigError(scope, path, "mode must be octal, at most 7777", opt)
    elif not value.isdigit() or len(value) > 12 or int(value) > MAX_TMPFS_ID:
        raise ConfigError(scope, path, f"{key} must be a number from 0 to {MAX_TMPFS_ID}", opt)


def _mount(f: _Fields, index: int, value: Mapping[str, Any]) -> MountConfig:
    m = _Fields(f.scope, value, f"mounts[{index}]")
    kind = m.text("type", "volume") or "volume"
    if kind not in _MOUNT_TYPES:
        raise m.fail("type", "must be one of volume, bind, tmpfs", kind)
    target = m.required_text("target")
    if not target.startswith("/"):
        raise m.fail("target", "must be an absolute path inside the container", target)
    norm = posixpath.normpath(target)
    if ".." in target.split("/") or norm == "/":
        raise m.fail("target", "must not be / or contain '..'", target)
    if any(norm == p or norm.startswith(p + "/") for p in _FORBIDDEN_TARGETS) or norm == "/dev":
        raise m.fail("target", "must not be /dev or under /proc or /sys", target)
    source = m.text("source")
    if kind == "tmpfs":
        source = None
    else:
        if not source:
            raise m.fail("source", f"is required for type {kind}", show_value=False)
        if ".." in source.split("/"):
            raise m.fail("source", "must not contain '..'", source)
        norm_source = posixpath.normpath(source)
        if any(norm_source == p or norm_source.startswith(p + "/") for p in _SELF_PATHS):
            raise m.fail("source", "names the driver's own process, not a host path", source)
    options: list[str] = []
    for i, opt in enumerate(m.text_list("options") or ()):
        path = f"mounts[{index}].options[{i}]"
        allowed = opt in (_TMPFS_OPTIONS if kind == "tmpfs" else _BIND_OPTIONS)
        keyed = _TMPFS_KEYED.fullmatch(opt) if kind == "tmpfs" else None
        if keyed:
            _check_tmpfs_value(f.scope, path, opt, keyed.group(1), keyed.group(2))
            allowed = True
        if not allowed:
            raise ConfigError(f.scope, path, f"is not an allowed {kind} mount option", opt)
        options.append(opt)
    return MountConfig(type=kind, target=target, source=source, options=tuple(options))


def parse_task_config(data: bytes) -> TaskConfig:
    """Decode TaskConfig.msgpack_driver_config into a validated TaskConfig."""
    f = _Fields("task", _decode("task", data, _TASK_TYPE))
    image = _image(f)

    args = f.text_list("args") or ()
    entrypoint = f.text_list("entrypoint", allow_empty_list=False)
    command = f.text("command")
    if command == "":
        command = None
    argv = [*(entrypoint or ()), *([command] if command else []), *args]
    sizes = [len(a.encode("utf-8", "surrogatepass")) for a in argv]  # execve counts bytes
    for i, (a, n) in enumerate(zip(argv, sizes)):
        if n > MAX_ARG_LEN:
            raise f.fail("args", f"element {i} is {n} bytes in UTF-8, more than {MAX_ARG_LEN}", a)
    if sum(n + 1 for n in sizes) > MAX_ARGV_TOTAL:
        raise f.fail("args", "command line is longer than 1 MiB (UTF-8 bytes, one NUL per element)",
                     show_value=False)

    cwd = f.text("cwd") or None
    if cwd is not None:
        _absolute_path(f, "cwd", cwd)

    pid_mode = f.text("pid_mode") or None
    if pid_mode not in (None, "host"):
        raise f.fail("pid_mode", 'must be "host" or unset', pid_mode)

    hostname = f.text("hostname") or None
    if hostname is not None and not is_hostname(hostname):
        raise f.fail("hostname", "must be a host name of at most 63 characters (letters, digits, -, .)", hostname)

    seccomp = f.flag("seccomp", True)
    profile = f.text("seccomp_profile") or None
    if profile is not None:
        _absolute_path(f, "seccomp_profile", profile)
        if not seccomp:
            raise f.fail("seccomp_profile", "is set but seccomp = false", profile)

    shm_text = f.text("shm_size") or None
    shm_size = None
    if shm_text is not None:
        try:
            shm_size = parse_size(shm_text)
        except ValueError as exc:
            raise f.fail("shm_size", str(exc), shm_text) from None
        if not MIN_SHM_SIZE <= shm_size <= MAX_SHM_SIZE:
            raise f.fail("shm_size", "must be at least 1k (1024 bytes) and at most 1T", shm_text)

    host_network = f.flag("host_network", False)
    mounts_raw = f.raw("mounts") or ()
    if len(mounts_raw) > MAX_LIST_ITEMS:
        raise f.fail("mounts", f"has more than {MAX_LIST_ITEMS} blocks", show_value=False)

    return TaskConfig(
        image=image,
        image_pull_timeout=_duration(f, "image_pull_timeout", 0, MAX_PULL_TIMEOUT, DEFAULT_IMAGE_PULL_TIMEOUT)
        or 300.0,
        command=command,
        args=args,
        entrypoint=entrypoint,
        cwd=cwd,
        privileged=f.flag("privileged", False),
        pids_limit=_whole_number(f, "pids_limit", 1, MAX_PIDS_LIMIT),
        pid_mode=pid_mode,
        hostname=hostname,
        host_dns=f.flag("host_dns", True),
        seccomp=seccomp,
        seccomp_profile=profile,
        shm_size=shm_size,
        sysctl=_sysctl(f, host_network),
        readonly_rootfs=f.flag("readonly_rootfs", False),
        host_network=host_network,
        extra_hosts=f.each("extra_hosts", _extra_host),
        cap_add=_capabilities(f, "cap_add", allow_all=False),
        cap_drop=_capabilities(f, "cap_drop", allow_all=True),
        devices=f.each("devices", _device),
        auth=_auth(f, "auth"),
        mounts=tuple(_mount(f, i, m or {}) for i, m in enumerate(mounts_raw)),
    )


PRIVILEGED_NOT_ALLOWED = "Running privileged jobs are not allowed"


class NotAllowedError(ConfigError):
    """An operator gate refused the task. The text is fixed (the reference driver's, which
    operators search their alloc statuses for) rather than our field: value form."""

    def __init__(self, field_name: str, message: str) -> None:
        ValueError.__init__(self, message)
        self.scope, self.field, self.rule = "task", field_name, message


def check_task_allowed(task: TaskConfig, driver: DriverConfig) -> None:
    """Operator gates from the plugin config (ConfigError if the task asks for more)."""
    if task.privileged and not driver.allow_privileged:
        raise NotAllowedError("privileged", PRIVILEGED_NOT_ALLOWED)


_DRIVER_TYPE = implied_type(driver_config_spec())
# `any` attributes (sysctl) arrive with their own concrete type and no dynamic wrapper,
# so _decode reads them generically (wrapped_dynamic=False)
_TASK_TYPE = implied_type(task_config_spec())
