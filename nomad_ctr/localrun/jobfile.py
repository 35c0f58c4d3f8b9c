"""Just enough of Nomad job files and agent config files to run one task locally:
job > group > task (driver, config {}, env {}, user, resources {}, kill_timeout,
kill_signal, meta {}) and the agent's plugin "<binary>" { args, config {} } blocks.

The task's config and env stay unevaluated here: they may reference NOMAD_* variables,
which exist only once the allocation does (localrun.taskenv).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from nomad_ctr.localrun.hclfile import Body, HclError, evaluate, parse_file, parse_text

__all__ = [
    "DEFAULT_CPU",
    "DEFAULT_KILL_TIMEOUT",
    "DEFAULT_MEMORY_MB",
    "AgentConfig",
    "JobTask",
    "PluginBlock",
    "load_agent",
    "load_job",
    "parse_agent",
    "parse_duration",
    "parse_job",
]

# what Nomad fills in when a task leaves these out
DEFAULT_CPU = 100
DEFAULT_MEMORY_MB = 300
DEFAULT_KILL_TIMEOUT = 5.0
DEFAULT_MAX_KILL_TIMEOUT = 30.0


@dataclass(frozen=True)
class JobTask:
    """One task of a job file."""

    job_id: str
    name: str
    group: str
    driver: str
    job_name: str = ""
    namespace: str = "default"
    region: str = "global"
    datacenter: str = "dc1"
    user: str = ""
    kill_signal: str = ""
    kill_timeout: float = DEFAULT_KILL_TIMEOUT  # seconds
    cpu: int = DEFAULT_CPU  # MHz
    cores: int = 0
    memory_mb: int = DEFAULT_MEMORY_MB
    memory_max_mb: int = 0
    meta: dict[str, str] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)  # raw, evaluated per allocation
    config: Body | None = None  # raw, evaluated per allocation

    def __post_init__(self) -> None:
        if not self.job_name:
            object.__setattr__(self, "job_name", self.job_id)


@dataclass(frozen=True)
class PluginBlock:
    name: str
    args: tuple[str, ...] = ()
    config: dict[str, Any] | None = None  # generic map; None when there is no config block


@dataclass(frozen=True)
class AgentConfig:
    data_dir: str = ""
    plugin_dir: str = ""
    max_kill_timeout: float = DEFAULT_MAX_KILL_TIMEOUT
    plugins: dict[str, PluginBlock] = field(default_factory=dict)


# ---- small evaluators for job-level attributes (no variables there) -------------------


def _str(body: Body, name: str, default: str, where: str) -> str:
    if name not in body.attributes:
        return default
    value = evaluate(body.attributes[name], {}, f"{where}.{name}")
    if value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal, str)):
        return str(value)
    raise HclError(f"{where}.{name}: a string is required")


def _int(body: Body, name: str, default: int, where: str) -> int:
    if name not in body.attributes:
        return default
    value = evaluate(body.attributes[name], {}, f"{where}.{name}")
    if value is None:
        return default
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise HclError(f"{where}.{name}: a whole number is required, got {value!r}")
    if value < 0:
        raise HclError(f"{where}.{name}: must not be negative, got {value}")
    return value


def _str_map(body: Body, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in body.attributes:
        out[name] = _str(body, name, "", where)
    return out


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, where: str = "duration") -> float:
    """A Go duration (`5s`, `1m30s`, `250ms`) in seconds."""
    s = text.strip()
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise HclError(f'{where}: {text!r} is not a duration (e.g. "5s", "1m30s")')
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not s:
        raise HclError(f"{where}: empty duration")
    return total


# ---- job files --------------------------------------------------------------------------


def load_job(path: str | Path, task: str | None = None) -> JobTask:
    return parse_job(parse_file(path), task, str(path))


def parse_job(body: Body | str, task: str | None = None, source: str = "job") -> JobTask:
    """Find `task` (or the only task) in a job file's body."""
    if isinstance(body, str):
        body = parse_text(body, source)
    jobs = body.blocks_of("job")
    if len(jobs) != 1 or len(jobs[0].labels) != 1:
        raise HclError(f'{source}: want exactly one job "<id>" block')
    job = jobs[0]
    job_id = job.labels[0]
    where = f"job {job_id!r}"
    meta: dict[str, str] = {}
    for m in job.body.blocks_of("meta"):
        meta.update(_str_map(m.body, f"{where}.meta"))

    candidates = []
    for group in job.body.blocks_of("group"):
        for tb in group.body.blocks_of("task"):
            if len(tb.labels) != 1 or len(group.labels) != 1:
                raise HclError(f"{source}: group and task blocks need one label each")
            candidates.append((group, tb))
    if not candidates:
        raise HclError(f"{source}: job {job_id!r} has no tasks")
    names = [tb.labels[0] for _, tb in candidates]
    if task is None:
        if len(candidates) > 1:
            raise HclError(
                f"{source}: job {job_id!r} has several tasks ({', '.join(names)}); choose one with --task"
            )
        group, tb = candidates[0]
    else:
        found = [(g, t) for g, t in candidates if t.labels[0] == task]
        if not found:
            raise HclError(
                f"{source}: no task {task!r} in job {job_id!r} (tasks: {', '.join(names)})"
            )
        if len(found) > 1:
            raise HclError(f"{source}: task {task!r} appears in more than one group")
        group, tb = found[0]

    for m in group.body.blocks_of("meta"):
        meta.update(_str_map(m.body, f"{where}.meta"))
    for m in tb.body.blocks_of("meta"):
        meta.update(_str_map(m.body, f"{where}.meta"))

    name = tb.labels[0]
    where = f"task {name!r}"
    t = tb.body
    driver = _str(t, "driver", "", where)
    if not driver:
        raise HclError(f"{source}: task {name!r} has no driver")

    kill_timeout = DEFAULT_KILL_TIMEOUT
    kt = _str(t, "kill_timeout", "", where)
    if kt:
        kill_timeout = parse_duration(kt, f"{where}.kill_timeout")

    cpu, cores, memory, memory_max = DEFAULT_CPU, 0, DEFAULT_MEMORY_MB, 0
    res = t.one_block("resources", where)
    if res is not None:
        rw = f"{where}.resources"
        cores = _int(res.body, "cores", 0, rw)
        if cores and "cpu" in res.body.attributes:
            raise HclError(f"{rw}: set either cpu or cores, not both")
        cpu = _int(res.body, "cpu", DEFAULT_CPU, rw)
        memory = _int(res.body, "memory", DEFAULT_MEMORY_MB, rw)
        memory_max = _int(res.body, "memory_max", 0, rw)
        if memory_max and memory_max < memory:
            raise HclError(f"{rw}.memory_max: {memory_max} is below memory ({memory})")

    env: dict[str, Any] = {}
    for e in t.blocks_of("env"):
        env.update(e.body.attributes)
    if "env" in t.attributes:  # env = { ... } attribute form
        raw = t.attributes["env"]
        if not isinstance(raw, dict):
            raise HclError(f"{where}.env: must be a map of strings")
        env.update({k.strip('"'): v for k, v in raw.items() if not k.startswith("__")})

    config = t.one_block("config", where)
    return JobTask(
        job_id=job_id,
        job_name=_str(job.body, "name", job_id, f"job {job_id!r}"),
        namespace=_str(job.body, "namespace", "default", f"job {job_id!r}"),
        region=_str(job.body, "region", "global", f"job {job_id!r}"),
        datacenter=_first_datacenter(job.body, job_id),
        group=group.labels[0],
        name=name,
        driver=driver,
        user=_str(t, "user", "", where),
        kill_signal=_str(t, "kill_signal", "", where),
        kill_timeout=kill_timeout,
        cpu=cpu,
        cores=cores,
        memory_mb=memory,
        memory_max_mb=memory_max,
        meta=meta,
        env=env,
        config=config.body if config is not None else None,
    )


def _first_datacenter(body: Body, job_id: str) -> str:
    if "datacenters" not in body.attributes:
        return "dc1"
    value = evaluate(body.attributes["datacenters"], {}, f"job {job_id!r}.datacenters")
    if isinstance(value, list) and value and isinstance(value[0], str) and "*" not in value[0]:
        return value[0]
    return "dc1"


# ---- agent files ------------------------------------------------------------------------


def load_agent(path: str | Path) -> AgentConfig:
    return parse_agent(parse_file(path), str(path))


def parse_agent(body: Body | str, source: str = "agent") -> AgentConfig:
    from nomad_ctr.localrun.hclfile import evaluate_body

    if isinstance(body, str):
        body = parse_text(body, source)
    max_kill = DEFAULT_MAX_KILL_TIMEOUT
    for c in body.blocks_of("client"):
        mkt = _str(c.body, "max_kill_timeout", "", "client")
        if mkt:
            max_kill = parse_duration(mkt, "client.max_kill_timeout")
    plugins: dict[str, PluginBlock] = {}
    for pb in body.blocks_of("plugin"):
        if len(pb.labels) != 1:
            raise HclError(f"{source}: a plugin block needs one label (the binary name)")
        name = pb.labels[0]
        where = f"plugin {name!r}"
        args: tuple[str, ...] = ()
        if "args" in pb.body.attributes:
            raw = evaluate(pb.body.attributes["args"], {}, f"{where}.args")
            if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
                raise HclError(f"{where}.args: must be a list of strings")
            args = tuple(raw)
        cfg = pb.body.one_block("config", where)
        config = evaluate_body(cfg.body, {}, f"{where}.config") if cfg is not None else None
        if name in plugins:
            raise HclError(f"{source}: plugin {name!r} is configured twice")
        plugins[name] = PluginBlock(name, args, config)
    return AgentConfig(
        data_dir=_str(body, "data_dir", "", "agent"),
        plugin_dir=_str(body, "plugin_dir", "", "agent"),
        max_kill_timeout=max_kill,
        plugins=plugins,
    )
