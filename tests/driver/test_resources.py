"""Nomad's resources as the container's cgroup limits, read on the host from the task's
own cgroup (v1 here; v2 paths in cgroups.py): cpu shares, memory soft/hard limit and
memory_max (-1 = no hard limit), reserved cores as the cpuset, pids_limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cgroups
import pytest
from driverkit import Alloc, Plugin, task_config

from nomad_ctr import Client
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.state import decode_state

pytestmark = pytest.mark.driver

MIB = 1 << 20


@pytest.fixture
def running(plugin: Plugin, alloc, images, ns_client: Client) -> Iterator:
    """start(task_changes, **options) -> (host pid, alloc) of a task that stays up."""
    started: list[str] = []

    def start(change=None, **options) -> tuple[int, Alloc]:
        a = alloc()
        task = a.task(task_config(image=images.plain, command="sh",
                                  args=["-c", "echo ready; sleep 300"], **options))
        if change:
            change(task)
        handle = plugin.start(task)
        started.append(task.id)
        a.stdout.wait_for("ready")
        cid = decode_state(handle.driver_state).container_id
        return ns_client.containers.get(cid).status().pid, a

    yield start
    for task_id in started:
        plugin.destroy(task_id)


def test_cpu_shares_from_the_tasks_cpu(running) -> None:
    def cpu(task: driver_pb2.TaskConfig) -> None:
        task.resources.linux_resources.cpu_shares = 300
        task.resources.allocated_resources.cpu.cpu_shares = 300

    pid, _ = running(cpu)
    want = cgroups.cpu_weight_for_shares(300) if cgroups.is_v2() else 300
    assert cgroups.cpu_shares(pid) == want


def test_memory_soft_and_hard_limit(running) -> None:
    def memory(task: driver_pb2.TaskConfig) -> None:
        task.resources.allocated_resources.memory.memory_mb = 64
        task.resources.allocated_resources.memory.memory_max_mb = 160

    pid, _ = running(memory)
    assert cgroups.memory_limits(pid) == (64 * MIB, 160 * MIB)


def test_memory_without_memory_max_is_the_hard_limit(running) -> None:
    def memory(task: driver_pb2.TaskConfig) -> None:
        task.resources.allocated_resources.memory.memory_mb = 48

    pid, _ = running(memory)
    assert cgroups.memory_limits(pid) == (48 * MIB, 48 * MIB)


def test_memory_max_minus_one_means_no_hard_limit(running) -> None:
    def memory(task: driver_pb2.TaskConfig) -> None:
        task.resources.allocated_resources.memory.memory_mb = 32
        task.resources.allocated_resources.memory.memory_max_mb = -1

    pid, _ = running(memory)
    assert cgroups.memory_limits(pid) == (32 * MIB, None)


def online_cpus() -> list[int]:
    """The host's online CPU ids, from the kernel's list format ("0-3,6")."""
    out: list[int] = []
    for part in Path("/sys/devices/system/cpu/online").read_text().strip().split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def test_reserved_cores_are_the_cpuset(running) -> None:
    # Nomad passes `resources { cores = 1 }` as the reserved cores' list. Reserve the
    # highest core: an unrestricted task (all cores) or core 0 would not match it.
    online = online_cpus()
    if len(online) < 2:
        pytest.skip("one online CPU: a reserved core looks like no reservation")
    core = str(online[-1])

    def cores(task: driver_pb2.TaskConfig) -> None:
        task.resources.linux_resources.cpuset_cpus = core

    pid, _ = running(cores)
    assert cgroups.cpuset_cpus(pid) == core
    with open(f"/proc/{pid}/status") as f:
        assert f"Cpus_allowed_list:\t{core}\n" in f.read()


def test_pids_limit_in_the_cgroup(running) -> None:
    pid, _ = running(pids_limit=25)
    assert cgroups.pids_max(pid) == "25"
