"""Typed, immutable results of the API, parsed from the bridge's JSON shapes.

Every class here is a frozen dataclass built by a `from_json` classmethod; the JSON shapes
are those of gobridge/CONTRACT.md. Fields the bridge reports as null stay None.
"""

from __future__ import annotations

import enum
import re
import signal as _signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ContainerInfo",
    "CpuMetrics",
    "Event",
    "ExecOutput",
    "ExecResult",
    "ExitStatus",
    "Image",
    "ImageConfig",
    "LayerProgress",
    "LayerStatus",
    "MemoryMetrics",
    "Metrics",
    "PidsMetrics",
    "PullProgress",
    "RunResult",
    "TaskState",
    "TaskStatus",
    "Version",
    "parse_time",
]

# RFC 3339 with up to nanosecond fractions; Python keeps microseconds.
_TIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC 3339 time (nanoseconds allowed) into an aware UTC datetime.

    None, "" and Go's zero time (year 1) mean "not set" and give None.
    """
    if not value:
        return None
    m = _TIME_RE.match(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    date, clock, frac, zone = m.groups()
    if date.startswith("0001-01-01"):
        return None
    micro = (frac or "").ljust(6, "0")[:6]
    zone = "+00:00" if zone in ("Z", "z") else zone
    parsed = datetime.fromisoformat(f"{date}T{clock}.{micro}{zone}")
    return parsed.astimezone(timezone.utc)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _strs(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


@dataclass(frozen=True)
class Version:
    version: str
    revision: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Version:
        return cls(version=str(d.get("version", "")), revision=str(d.get("revision", "")))


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image's OCI config."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> ImageConfig:
        d = d or {}
        env: dict[str, str] = {}
        for item in d.get("env") or ():
            key, _, val = str(item).partition("=")
            env[key] = val
        return cls(
            entrypoint=_strs(d.get("entrypoint")),
            cmd=_strs(d.get("cmd")),
            env=env,
            working_dir=d.get("working_dir") or "",
            user=d.get("user") or "",
            exposed_ports=tuple(d.get("exposed_ports") or ()),
            stop_signal=d.get("stop_signal") or "",
        )


@dataclass(frozen=True)
class Image:
    name: str
    digest: str
    size: int
    created: datetime | None
    labels: dict[str, str]
    config: ImageConfig

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Image:
        return cls(
            name=d["name"],
            digest=d.get("digest") or "",
            size=int(d.get("size") or 0),
            created=parse_time(d.get("created")),
            labels=dict(d.get("labels") or {}),
            config=ImageConfig.from_json(d.get("config")),
        )


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    image: str
    runtime: str
    snapshotter: str
    snapshot_key: str
    labels: dict[str, str]
    created_at: datetime | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ContainerInfo:
        return cls(
            id=d["id"],
            image=d.get("image") or "",
            runtime=d.get("runtime") or "",
            snapshotter=d.get("snapshotter") or "",
            snapshot_key=d.get("snapshot_key") or "",
            labels=dict(d.get("labels") or {}),
            created_at=parse_time(d.get("created_at")),
        )


class TaskState(str, enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"
    PAUSED = "paused"
    PAUSING = "pausing"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> TaskState:
        try:
            return cls(value or "unknown")
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class TaskStatus:
    state: TaskState
    pid: int
    exit_code: int | None
    exited_at: datetime | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TaskStatus:
        state = TaskState.parse(d.get("status"))
        exit_code = _opt_int(d.get("exit_code"))
        # containerd reports exit_code 0 for tasks that have not exited; hide it.
        if state is not TaskState.STOPPED:
            exit_code = None
        return cls(
            state=state,
            pid=int(d.get("pid") or 0),
            exit_code=exit_code,
            exited_at=parse_time(d.get("exited_at")),
        )


@dataclass(frozen=True)
class ExitStatus:
    """How a task or exec process ended.

    `oom_killed` is True when the kernel's OOM killer killed a process in the container's
    cgroup (see Container.wait for how it is measured).
    """

    exit_code: int
    exited_at: datetime | None
    oom_killed: bool = False

    @property
    def signal(self) -> _signal.Signals | None:
        """The signal that ended the process, when the exit code says so (128 + n)."""
        if 128 < self.exit_code < 128 + 65:
            try:
                return _signal.Signals(self.exit_code - 128)
            except ValueError:
                return None
        return None

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, oom_killed: bool = False) -> ExitStatus:
        return cls(
            exit_code=int(d.get("exit_code") or 0),
            exited_at=parse_time(d.get("exited_at")),
            oom_killed=oom_killed,
        )


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class ExecOutput:
    """One read from a streaming exec: new output, and whether the process has exited."""

    stdout: bytes
    stderr: bytes
    exited: bool
    exit_code: int | None


@dataclass(frozen=True)
class CpuMetrics:
    total_ns: int | None = None
    user_ns: int | None = None
    system_ns: int | None = None
    throttled_periods: int | None = None
    throttled_time_ns: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> CpuMetrics:
        d = d or {}
        return cls(**{name: _opt_int(d.get(name)) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class MemoryMetrics:
    usage: int | None = None
    max_usage: int | None = None
    limit: int | None = None
    rss: int | None = None
    cache: int | None = None
    swap: int | None = None
    oom_events: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> MemoryMetrics:
        d = d or {}
        return cls(**{name: _opt_int(d.get(name)) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class PidsMetrics:
    current: int | None = None
    limit: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> PidsMetrics:
        d = d or {}
        return cls(current=_opt_int(d.get("current")), limit=_opt_int(d.get("limit")))


@dataclass(frozen=True)
class Metrics:
    """Resource use of a task's cgroup, v1 and v2 mapped to one shape."""

    cgroup: str
    timestamp: datetime | None
    cpu: CpuMetrics
    memory: MemoryMetrics
    pids: PidsMetrics

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Metrics:
        return cls(
            cgroup=d.get("cgroup") or "",
            timestamp=parse_time(d.get("timestamp")),
            cpu=CpuMetrics.from_json(d.get("cpu")),
            memory=MemoryMetrics.from_json(d.get("memory")),
            pids=PidsMetrics.from_json(d.get("pids")),
        )


class LayerStatus(str, enum.Enum):
    WAITING = "waiting"
    DOWNLOADING = "downloading"
    DONE = "done"
    EXISTS = "exists"


@dataclass(frozen=True)
class LayerProgress:
    ref: str
    status: LayerStatus
    offset: int
    total: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LayerProgress:
        try:
            status = LayerStatus(d.get("status") or "waiting")
        except ValueError:
            status = LayerStatus.WAITING
        total = int(d.get("total") or 0)
        offset = int(d.get("offset") or 0)
        if status in (LayerStatus.DONE, LayerStatus.EXISTS) and total:
            offset = total
        return cls(ref=d.get("ref") or "", status=status, offset=offset, total=total)


@dataclass(frozen=True)
class PullProgress:
    """A snapshot of a pull: per-layer state plus totals over all layers."""

    ref: str
    layers: tuple[LayerProgress, ...]
    done: bool

    @property
    def offset(self) -> int:
        """Bytes fetched (or already present) so far, over all known layers."""
        return sum(layer.offset for layer in self.layers)

    @property
    def total(self) -> int:
        """Bytes of all layers whose size is known so far."""
        return sum(layer.total for layer in self.layers)

    @property
    def layers_done(self) -> int:
        return sum(
            1 for layer in self.layers if layer.status in (LayerStatus.DONE, LayerStatus.EXISTS)
        )

    @property
    def fraction(self) -> float:
        """0.0 .. 1.0; 1.0 once the pull is done."""
        if self.done:
            return 1.0
        total = self.total
        return min(1.0, self.offset / total) if total else 0.0

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PullProgress:
        return cls(
            ref=d.get("ref") or "",
            layers=tuple(LayerProgress.from_json(x) for x in d.get("layers") or ()),
            done=bool(d.get("done")),
        )


@dataclass(frozen=True)
class Event:
    """One containerd event (task exit, OOM, start, delete, ...)."""

    topic: str
    container_id: str
    exit_code: int | None
    exited_at: datetime | None
    timestamp: datetime | None
    namespace: str = ""
    id: str = ""  # the process id (exec id) where the event has one
    pid: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Event:
        return cls(
            topic=d.get("topic") or "",
            container_id=d.get("container_id") or "",
            exit_code=_opt_int(d.get("exit_code")),
            exited_at=parse_time(d.get("exited_at")),
            timestamp=parse_time(d.get("timestamp")),
            namespace=d.get("namespace") or "",
            id=d.get("id") or "",
            pid=_opt_int(d.get("pid")),
        )


@dataclass(frozen=True)
class RunResult:
    """The outcome of containers.run(): always the same type, whatever the options."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    container_id: str = ""
    oom_killed: bool = False
