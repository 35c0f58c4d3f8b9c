"""Read a running container's cgroup files from the host, on cgroup v1 or v2.

The task's host pid names its cgroup in /proc/<pid>/cgroup; v1 has one hierarchy per
controller (/sys/fs/cgroup/<controller>/<path>), v2 one unified tree (the `0::` line).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as a huge page-aligned number


def is_v2() -> bool:
    return (ROOT / "cgroup.controllers").exists()


def cgroup_dir(pid: int, controller: str) -> Path:
    return dir_from(Path(f"/proc/{pid}/cgroup").read_text(), controller, v2=is_v2())


def dir_from(proc_cgroup: str, controller: str, *, v2: bool, root: Path = ROOT) -> Path:
    """The cgroup directory of `controller` named by a /proc/<pid>/cgroup text."""
    lines = proc_cgroup.splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if v2 and controllers == "":
            return root / path.lstrip("/")
        if not v2 and controller in controllers.split(","):
            # joined hierarchies (cpu,cpuacct) also have a per-controller link
            return root / controller / path.lstrip("/")
    raise AssertionError(f"no {controller} cgroup in {lines}")


def read(pid: int, controller: str, v1_file: str, v2_file: str) -> str:
    return (cgroup_dir(pid, controller) / (v2_file if is_v2() else v1_file)).read_text().strip()


def cpu_weight_for_shares(shares: int) -> int:
    """runc's conversion of cpu.shares (2..262144) to cgroup v2 cpu.weight (1..10000)."""
    return 1 + ((shares - 2) * 9999) // 262142


def cpu_shares(pid: int) -> int:
    """cpu.shares on v1; on v2 the shares that map to cpu.weight (compare via the weight)."""
    return int(read(pid, "cpu", "cpu.shares", "cpu.weight"))


def memory_limits(pid: int) -> tuple[int | None, int | None]:
    """(soft, hard) in bytes: v1 soft_limit/limit, v2 low/max; None = no limit."""
    soft = read(pid, "memory", "memory.soft_limit_in_bytes", "memory.low")
    hard = read(pid, "memory", "memory.limit_in_bytes", "memory.max")

    def value(text: str) -> int | None:
        if text == "max" or int(text) >= UNLIMITED_V1:
            return None
        return int(text)

    return value(soft), value(hard)


def cpuset_cpus(pid: int) -> str:
    return read(pid, "cpuset", "cpuset.cpus", "cpuset.cpus")


def pids_max(pid: int) -> str:
    return read(pid, "pids", "pids.max", "pids.max")
