"""Thin Python wrapper around tests/harness/nomad-harness, the Go program that plays
the Nomad client against the containerd-driver plugin (go-plugin launch, hcldec +
cty msgpack config encoding, alloc dir, log FIFOs, the task RPCs).

One-shot commands return a `HarnessResult` (exit code + parsed JSON); `Session`
drives the JSON-lines `session` command for scripted scenarios (stop while waiting,
exec, stats, crash the plugin and recover).

Harness exit codes: 0 protocol went right (whatever the task's exit code),
1 protocol violation or harness failure, 2 usage, 3 the driver refused (config
validation failed, or StartTask/SetConfig/... returned an error status).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HARNESS_DIR = REPO / "tests" / "harness"
HARNESS_BIN = HARNESS_DIR / "nomad-harness"
DEFAULT_RUNTIME = "io.containerd.runc.v2"

_build_lock = threading.Lock()
_built = False


class HarnessError(RuntimeError):
    """The harness reported a failure (a non-ok answer or an unexpected exit code)."""

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.data = data or {}


def build_harness() -> Path:
    """Build nomad-harness once per process (build.sh is fast when up to date)."""
    global _built
    with _build_lock:
        if not _built:
            subprocess.run(["bash", str(HARNESS_DIR / "build.sh")], check=True)
            _built = True
    return HARNESS_BIN


def plugin_command() -> list[str]:
    """How to exec the plugin: $NOMAD_CTR_DRIVER_PLUGIN, the installed console
    script, or `python -m nomad_ctr.driver`."""
    explicit = os.environ.get("NOMAD_CTR_DRIVER_PLUGIN")
    if explicit:
        return [explicit]
    script = shutil.which("containerd-driver")
    if script:
        return [script]
    return [sys.executable, "-m", "nomad_ctr.driver"]


def plugin_flags(plugin: list[str] | None = None) -> list[str]:
    cmd = plugin or plugin_command()
    flags = ["--plugin", cmd[0]]
    for arg in cmd[1:]:
        flags += ["--plugin-arg", arg]
    return flags


# --- HCL writers for agent configs and job files ------------------------------------


def hcl_value(value: Any) -> str:
    """Render a Python value as an HCL expression."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ "
            + ", ".join(f"{json.dumps(k)} = {hcl_value(v)}" for k, v in value.items())
            + " }"
        )
    raise TypeError(f"cannot render {type(value).__name__} as HCL")


def hcl_body(attrs: dict[str, Any], indent: str = "  ") -> str:
    return "".join(f"{indent}{k} = {hcl_value(v)}\n" for k, v in attrs.items())


def write_agent_config(
    path: Path,
    *,
    address: str | None = None,
    namespace: str | None = None,
    runtime: str = DEFAULT_RUNTIME,
    stats_interval: str | None = "1s",
    extra: dict[str, Any] | None = None,
    extra_hcl: str = "",
    plugin_name: str = "containerd-driver",
) -> Path:
    """An agent config with a plugin "containerd-driver" { config { ... } } block.
    address defaults to $CONTAINERD_ADDRESS (the test stack) when set."""
    config: dict[str, Any] = {"enabled": True, "containerd_runtime": runtime}
    address = address or os.environ.get("CONTAINERD_ADDRESS")
    if address:
        config["address"] = address
    if namespace:
        config["namespace"] = namespace
    if stats_interval:
        config["stats_interval"] = stats_interval
    config.update(extra or {})
    body = hcl_body(config, "    ") + "".join(
        "    " + ln + "\n" for ln in extra_hcl.splitlines()
    )
    path.write_text(f'plugin "{plugin_name}" {{\n  config {{\n{body}  }}\n}}\n')
    return path


def write_job(
    path: Path,
    *,
    image: str,
    task: str = "main",
    job: str = "test",
    group: str = "g",
    config: dict[str, Any] | None = None,
    config_hcl: str = "",
    env: dict[str, str] | None = None,
    user: str | None = None,
    kill_timeout: str | None = None,
    kill_signal: str | None = None,
    cpu: int = 100,
    cores: int | None = None,
    memory: int = 64,
    memory_max: int | None = None,
    driver: str = "containerd-driver",
) -> Path:
    """A one-task job file. config_hcl is raw HCL appended inside config {} (for
    nested blocks such as mount { ... }). cores asks for reserved cores instead of
    cpu (Nomad takes one or the other)."""
    cfg = {"image": image, **(config or {})}
    cfg_body = hcl_body(cfg, "        ") + "".join(
        "        " + ln + "\n" for ln in config_hcl.splitlines()
    )
    task_attrs: dict[str, Any] = {"driver": driver}
    if user is not None:
        task_attrs["user"] = user
    if kill_timeout is not None:
        task_attrs["kill_timeout"] = kill_timeout
    if kill_signal is not None:
        task_attrs["kill_signal"] = kill_signal
    resources: dict[str, Any] = {"cores": cores} if cores is not None else {"cpu": cpu}
    resources["memory"] = memory
    if memory_max is not None:
        resources["memory_max"] = memory_max
    env_block = f"      env {{\n{hcl_body(env, '        ')}      }}\n" if env else ""
    path.write_text(
        f'job "{job}" {{\n  datacenters = ["dc1"]\n  group "{group}" {{\n'
        f'    task "{task}" {{\n{hcl_body(task_attrs, "      ")}'
        f"      config {{\n{cfg_body}      }}\n{env_block}"
        f"      resources {{\n{hcl_body(resources, '        ')}      }}\n"
        "    }\n  }\n}\n"
    )
    return path


# --- one-shot commands ----------------------------------------------------------------


@dataclass
class HarnessResult:
    returncode: int
    data: dict[str, Any]
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.data.get("ok"))

    def check(self, *allowed: int) -> HarnessResult:
        """Raise HarnessError unless the exit code is in allowed (default: 0)."""
        if self.returncode not in (allowed or (0,)):
            raise HarnessError(
                f"nomad-harness exited {self.returncode}: {self.data.get('error')}\n"
                f"--- harness stderr (tail) ---\n{self.stderr[-4000:]}",
                self.data,
            )
        return self


def run_harness(command: str, *args: str, timeout: float = 240) -> HarnessResult:
    """Run `nomad-harness <command> args...` and parse its JSON."""
    binary = build_harness()
    proc = subprocess.run(
        [str(binary), command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        data = {"error": "harness printed no JSON", "stdout": proc.stdout}
    return HarnessResult(proc.returncode, data, proc.stderr)


def schema_decode(
    job: Path, task: str, *, agent: Path | None = None, plugin: list[str] | None = None
) -> HarnessResult:
    """Decode the task's config block with the plugin's TaskConfigSchema; data has
    value (JSON), type (cty type JSON) and msgpack_b64."""
    args = [*plugin_flags(plugin), "--job", str(job), "--task", task]
    if agent:
        args += ["--agent", str(agent)]
    return run_harness("schema-decode", *args, timeout=60)


def agent_config(agent: Path, *, plugin: list[str] | None = None) -> HarnessResult:
    """Decode the agent's plugin config block with ConfigSchema, then SetConfig."""
    return run_harness(
        "agent-config", *plugin_flags(plugin), "--agent", str(agent), timeout=60
    )


def run_task(
    agent: Path,
    job: Path,
    task: str,
    *,
    plugin: list[str] | None = None,
    alloc_dir: Path | None = None,
    alloc_root: Path | None = None,
    stop_after: str | None = None,
    stop_timeout: str | None = None,
    stop_signal: str | None = None,
    signals: tuple[str, ...] = (),
    stats: int = 0,
    stats_interval: str | None = None,
    double_wait: bool = False,
    wait_timeout: str | None = None,
    handle_out: Path | None = None,
    timeout: float = 240,
) -> HarnessResult:
    """The full lifecycle (`run`): data has plugin, task (handle, alloc_dir,
    stdout_file, ...), result {exit_code, signal, oom_killed, err}, events,
    stdout/stderr contents, stats, signals, stopped/stop_error, inspect."""
    args = [
        *plugin_flags(plugin),
        "--agent",
        str(agent),
        "--job",
        str(job),
        "--task",
        task,
    ]
    opt = {
        "--alloc-dir": alloc_dir,
        "--alloc-root": alloc_root,
        "--stop-after": stop_after,
        "--stop-timeout": stop_timeout,
        "--stop-signal": stop_signal,
        "--stats-interval": stats_interval,
        "--wait-timeout": wait_timeout,
        "--handle-out": handle_out,
    }
    for flag, value in opt.items():
        if value is not None:
            args += [flag, str(value)]
    for sig in signals:
        args += ["--signal", sig]
    if stats:
        args += ["--stats", str(stats)]
    if double_wait:
        args.append("--double-wait")
    return run_harness("run", *args, timeout=timeout)


# --- session --------------------------------------------------------------------------


@dataclass
class Session:
    """A long-lived `nomad-harness session`. Use as a context manager:

        with Session(agent) as s:
            s.launch()
            task = s.start(job, "main")["task"]
            pending = s.submit("wait", task_id=task["task_id"])
            s.call("stop", task_id=task["task_id"])
            result = pending.result(60)["result"]
            s.call("destroy", task_id=task["task_id"])

    call() raises HarnessError on a non-ok answer unless check=False.
    """

    agent: Path | None = None
    plugin: list[str] | None = None
    extra_args: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = field(default=None, init=False)
    _pending: dict[int, Future[dict[str, Any]]] = field(
        default_factory=dict, init=False
    )
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stderr: list[str] = field(default_factory=list, init=False)

    def __enter__(self) -> Session:  # noqa: PYI034
        binary = build_harness()
        args = [str(binary), "session", *plugin_flags(self.plugin), *self.extra_args]
        if self.agent:
            args += ["--agent", str(self.agent)]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float = 30) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None and proc.stdin:
                proc.stdin.close()  # EOF: the harness shuts the plugin down and exits
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._proc = None

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _read_stdout(self) -> None:
        assert self._proc and self._proc.stdout
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._lock:
                fut = self._pending.pop(msg.get("id"), None)
            if fut is not None:
                fut.set_result(msg)
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            fut.set_exception(
                HarnessError("nomad-harness session exited\n" + self.stderr[-4000:])
            )

    def _read_stderr(self) -> None:
        assert self._proc and self._proc.stderr
        for line in self._proc.stderr:
            self._stderr.append(line)
            if len(self._stderr) > 5000:
                del self._stderr[:1000]

    def submit(self, op: str, **fields: Any) -> Future[dict[str, Any]]:
        """Send a request without waiting; the Future resolves to the answer dict."""
        assert self._proc and self._proc.stdin, "session not started"
        fut: Future[dict[str, Any]] = Future()
        with self._lock:
            rid = next(self._ids)
            self._pending[rid] = fut
        line = json.dumps(
            {"id": rid, "op": op, **{k: v for k, v in fields.items() if v is not None}}
        )
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        return fut

    def call(
        self, op: str, *, answer_timeout: float = 180, check: bool = True, **fields: Any
    ) -> dict[str, Any]:
        """Send a request and wait up to answer_timeout seconds for its answer."""
        answer = self.submit(op, **fields).result(answer_timeout)
        if check and not answer.get("ok"):
            raise HarnessError(f"{op}: {answer.get('error')}", answer)
        return answer

    # conveniences for the common ops
    def launch(self, **fields: Any) -> dict[str, Any]:
        return self.call("launch", **fields)

    def start(self, job: Path, task: str, **fields: Any) -> dict[str, Any]:
        return self.call("start", job=str(job), task=task, **fields)

    def wait(self, task_id: str, answer_timeout: float = 180) -> dict[str, Any]:
        """WaitTask; the result dict has exit_code, signal, oom_killed, err."""
        return self.call("wait", task_id=task_id, answer_timeout=answer_timeout)[
            "result"
        ]

    def stop(
        self, task_id: str, kill_timeout: str | None = None, signal: str | None = None
    ) -> dict[str, Any]:
        """StopTask; kill_timeout/signal default to the job's kill_timeout/kill_signal."""
        return self.call(
            "stop", task_id=task_id, kill_timeout=kill_timeout, signal=signal
        )

    def destroy(self, task_id: str, force: bool = True) -> dict[str, Any]:
        return self.call("destroy", task_id=task_id, force=force)
