"""TaskStats samples: containerd cgroup metrics -> Nomad's TaskResourceUsage.

CPU percent is the delta of the cgroup's total CPU time over wall time (100 = one
core); total_ticks expresses it in MHz of one core, as Nomad's docker driver does.
measured_fields lists only what the cgroup actually reported.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from google.protobuf import timestamp_pb2

from nomad_ctr import Metrics
from nomad_ctr._pb import driver_pb2

__all__ = ["CpuSampler", "core_mhz", "stats_response"]

_Cpu = driver_pb2.CPUUsage
_Mem = driver_pb2.MemoryUsage


@functools.cache
def core_mhz() -> float:
    """Speed of one core in MHz: cpufreq's max if known, else /proc/cpuinfo, else 1000."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read().strip()) / 1000.0
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("cpu mhz"):
                    return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return 1000.0


@dataclass
class _Point:
    wall: float
    total: int
    user: int | None
    system: int | None


class CpuSampler:
    """Keeps the previous sample so each new one can be turned into percentages."""

    def __init__(self) -> None:
        self._prev: _Point | None = None

    def cpu(self, m: Metrics, now: float | None = None) -> driver_pb2.CPUUsage:
        now = time.monotonic() if now is None else now
        usage = _Cpu()
        fields: list[int] = []
        if m.cpu.throttled_periods is not None:
            usage.throttled_periods = m.cpu.throttled_periods
            fields.append(_Cpu.THROTTLED_PERIODS)
        if m.cpu.throttled_time_ns is not None:
            usage.throttled_time = m.cpu.throttled_time_ns
            fields.append(_Cpu.THROTTLED_TIME)
        if m.cpu.total_ns is None:
            usage.measured_fields.extend(fields)
            return usage
        point = _Point(now, m.cpu.total_ns, m.cpu.user_ns, m.cpu.system_ns)
        prev, self._prev = self._prev, point
        if prev is not None and point.wall > prev.wall and point.total >= prev.total:
            wall_ns = (point.wall - prev.wall) * 1e9
            usage.percent = 100.0 * (point.total - prev.total) / wall_ns
            usage.total_ticks = usage.percent / 100.0 * core_mhz()
            fields += [_Cpu.PERCENT, _Cpu.TOTAL_TICKS]
            if point.user is not None and prev.user is not None:
                usage.user_mode = 100.0 * max(0, point.user - prev.user) / wall_ns
                fields.append(_Cpu.USER_MODE)
            if point.system is not None and prev.system is not None:
                usage.system_mode = 100.0 * max(0, point.system - prev.system) / wall_ns
                fields.append(_Cpu.SYSTEM_MODE)
        usage.measured_fields.extend(fields)
        return usage


def memory(m: Metrics) -> driver_pb2.MemoryUsage:
    usage = _Mem()
    fields: list[int] = []
    for name, enum in (("rss", _Mem.RSS), ("cache", _Mem.CACHE), ("swap", _Mem.SWAP),
                       ("usage", _Mem.USAGE), ("max_usage", _Mem.MAX_USAGE)):
        value = getattr(m.memory, name)
        if value is not None:
            setattr(usage, name, value)
            fields.append(enum)
    usage.measured_fields.extend(fields)
    return usage


def stats_response(task_id: str, m: Metrics, sampler: CpuSampler) -> driver_pb2.TaskStatsResponse:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    agg = driver_pb2.TaskResourceUsage(cpu=sampler.cpu(m), memory=memory(m))
    return driver_pb2.TaskStatsResponse(
        stats=driver_pb2.TaskStats(id=task_id, timestamp=ts, agg_resource_usage=agg)
    )
