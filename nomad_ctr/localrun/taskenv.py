"""The task environment and TaskConfig the Nomad client would build for one task of a
local allocation (fact sheet §5.4): NOMAD_* variables, the job's env {} evaluated with
them, resources with their Linux values, paths of the alloc dir and log FIFOs.
"""

from __future__ import annotations

import os
import secrets
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nomad_ctr._pb import driver_pb2
from nomad_ctr.localrun.allocdir import TaskPaths
from nomad_ctr.localrun.hclfile import evaluate
from nomad_ctr.localrun.jobfile import JobTask

__all__ = [
    "Allocation",
    "build_task_config",
    "cpuset_for_cores",
    "new_allocation",
    "task_env",
    "task_id",
]

_ID_CHARS = string.ascii_lowercase + string.digits
MIB = 1024 * 1024


@dataclass(frozen=True)
class Allocation:
    id: str
    index: int = 0

    @property
    def short_id(self) -> str:
        return self.id[:8]


def new_allocation() -> Allocation:
    return Allocation(str(uuid.uuid4()))


def task_id(alloc: Allocation, task: str) -> str:
    """`<alloc_id>/<task>/<8 random chars>`: new on every (re)start, as in Nomad."""
    return f"{alloc.id}/{task}/{''.join(secrets.choice(_ID_CHARS) for _ in range(8))}"


def cpuset_for_cores(cores: int) -> str:
    """Reserve the first `cores` CPUs this process may use (there is no scheduler here)."""
    available = sorted(os.sched_getaffinity(0))
    if cores > len(available):
        raise ValueError(f"resources.cores = {cores}, but this machine has {len(available)} CPUs")
    return ",".join(str(c) for c in available[:cores])


def _mhz_per_core() -> int:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return max(1, int(float(line.split(":", 1)[1])))
    except (OSError, ValueError):
        pass
    return 1000


def task_env(
    task: JobTask,
    alloc: Allocation,
    paths: TaskPaths,
    *,
    fs_isolation_image: bool = True,
    cpu_shares: int | None = None,
) -> dict[str, str]:
    """NOMAD_* variables plus the task's env {} (evaluated with them)."""
    if fs_isolation_image:  # the driver mounts these at /alloc, /local, /secrets
        alloc_dir, task_dir, secrets_dir = "/alloc", "/local", "/secrets"
    else:
        alloc_dir, task_dir, secrets_dir = (
            str(paths.shared_dir),
            str(paths.local_dir),
            str(paths.secrets_dir),
        )
    env = {
        "NOMAD_ALLOC_DIR": alloc_dir,
        "NOMAD_TASK_DIR": task_dir,
        "NOMAD_SECRETS_DIR": secrets_dir,
        "NOMAD_ALLOC_ID": alloc.id,
        "NOMAD_SHORT_ALLOC_ID": alloc.short_id,
        "NOMAD_ALLOC_NAME": f"{task.job_id}.{task.group}[{alloc.index}]",
        "NOMAD_ALLOC_INDEX": str(alloc.index),
        "NOMAD_TASK_NAME": task.name,
        "NOMAD_GROUP_NAME": task.group,
        "NOMAD_JOB_ID": task.job_id,
        "NOMAD_JOB_NAME": task.job_name,
        "NOMAD_NAMESPACE": task.namespace,
        "NOMAD_REGION": task.region,
        "NOMAD_DC": task.datacenter,
        "NOMAD_CPU_LIMIT": str(cpu_shares if cpu_shares is not None else task.cpu),
        "NOMAD_MEMORY_LIMIT": str(task.memory_mb),
    }
    if task.memory_max_mb:
        env["NOMAD_MEMORY_MAX_LIMIT"] = str(task.memory_max_mb)
    if task.cores:
        env["NOMAD_CPU_CORES"] = cpuset_for_cores(task.cores)
    for key, value in task.meta.items():
        env[f"NOMAD_META_{key}"] = value
        env[f"NOMAD_META_{key.upper()}"] = value
    variables = _variables(env, task)
    for key, raw in task.env.items():
        value = evaluate(raw, variables, f"task {task.name!r}.env.{key}")
        env[key] = "" if value is None else _as_text(value)
    return env


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _variables(env: Mapping[str, str], task: JobTask) -> dict[str, str]:
    """What `${...}` may reference: the NOMAD_* variables by name, env.X, meta.X."""
    out = dict(env)
    out.update({f"env.{k}": v for k, v in env.items()})
    out.update({f"meta.{k}": v for k, v in task.meta.items()})
    out.update({f"NOMAD_META_{k}": v for k, v in task.meta.items()})
    return out


def config_variables(env: Mapping[str, str], task: JobTask) -> dict[str, str]:
    """Variables for the task's config {}: the full task env (user env included)."""
    return _variables(env, task)


def build_task_config(
    task: JobTask,
    alloc: Allocation,
    paths: TaskPaths,
    *,
    env: Mapping[str, str],
    msgpack_config: bytes,
    node_id: str = "",
    node_name: str = "",
) -> driver_pb2.TaskConfig:
    """The TaskConfig for StartTask, filled as the Nomad client fills it."""
    cpu_shares = task.cpu
    cpuset = ""
    if task.cores:
        cpuset = cpuset_for_cores(task.cores)
        cpu_shares = task.cores * _mhz_per_core()
    limit_mb = max(task.memory_mb, task.memory_max_mb)
    resources = driver_pb2.Resources(
        allocated_resources=driver_pb2.AllocatedTaskResources(
            cpu=driver_pb2.AllocatedCpuResources(cpu_shares=cpu_shares),
            memory=driver_pb2.AllocatedMemoryResources(
                memory_mb=task.memory_mb, memory_max_mb=task.memory_max_mb
            ),
        ),
        linux_resources=driver_pb2.LinuxResources(
            cpu_shares=cpu_shares,
            memory_limit_bytes=limit_mb * MIB,
            cpuset_cpus=cpuset,
            PercentTicks=cpu_shares / float(_mhz_per_core() * (os.cpu_count() or 1)),
        ),
    )
    return driver_pb2.TaskConfig(
        id=task_id(alloc, task.name),
        name=task.name,
        msgpack_driver_config=msgpack_config,
        env=dict(env),
        resources=resources,
        user=task.user,
        alloc_dir=str(paths.alloc_dir),
        stdout_path=str(paths.stdout_fifo),
        stderr_path=str(paths.stderr_fifo),
        task_group_name=task.group,
        job_name=task.job_name,
        job_id=task.job_id,
        alloc_id=alloc.id,
        namespace=task.namespace,
        node_id=node_id,
        node_name=node_name,
    )
