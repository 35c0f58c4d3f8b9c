"""A `nomad agent -dev` of a test's own and the little of Nomad's HTTP API and CLI the
end-to-end test uses (tests/e2e/test_nomad_examples.py): start it, wait until its node
and the containerd-driver are ready, run and stop jobs, read alloc state and task logs,
and leave nothing behind. Field names are those of Nomad's documented HTTP API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DRIVER = "containerd-driver"
# Nomad's own default is 172.26.64.0/20, the driver's 172.26.80.0/20, the API's
# 172.26.96.0/20, the harness's group networks 172.26.112.0/24: this one is free.
BRIDGE_SUBNET = "172.26.128.0/20"

# task event types (Nomad's TaskEvent.Type) that mean the task is not going to run
FAILURE_EVENTS = frozenset(
    {
        "Driver Failure",
        "Setup Failure",
        "Failed Validation",
        "Failed Artifact Download",
        "Task hook failed",
        "Sibling Task Failed",
        "Not Restarting",
        "Restarting",
    }
)
TERMINAL = frozenset({"complete", "failed", "lost"})


# --- talking to the agent --------------------------------------------------------------


def nomad_env(addr: str) -> dict[str, str]:
    # our NOMAD_ADDR; none of the caller's Nomad CLI settings (token, namespace, TLS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMAD_") or k.startswith("NOMAD_CTR_")}
    env["NOMAD_ADDR"] = addr
    env["NOMAD_CLI_NO_COLOR"] = "1"
    return env


# no proxy for 127.0.0.1, whatever the environment says
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Agent:
    proc: subprocess.Popen[bytes]
    addr: str  # http://127.0.0.1:<port>
    log: Path
    env: dict[str, str]
    namespace: str  # the plugin's containerd namespace
    containerd: str  # the test stack's socket
    volume: Path  # host volume "s1" (example/volume_mount.nomad)
    bridge: str  # client.bridge_network_name

    def _request(self, method: str, path: str, query: dict[str, str]) -> bytes:
        url = self.addr + path + ("?" + urllib.parse.urlencode(query) if query else "")
        with _OPENER.open(urllib.request.Request(url, method=method), timeout=30) as resp:
            return bytes(resp.read())

    def get(self, path: str, **query: str) -> Any:
        return json.loads(self._request("GET", path, query))

    def text(self, path: str, **query: str) -> str:
        return self._request("GET", path, query).decode(errors="replace")

    def delete(self, path: str, **query: str) -> Any:
        return json.loads(self._request("DELETE", path, query) or b"null")

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            ["nomad", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            pytest.fail(
                f"`nomad {' '.join(args)}` exited {res.returncode}:\n{res.stdout}{res.stderr}\n"
                f"{self.log_tail()}",
                pytrace=False,
            )
        return res

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            return f"(no agent log: {exc})"
        return f"--- last {len(text)} lines of {self.log} ---\n" + "\n".join(text)


def free_ports(n: int) -> list[int]:
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def installed_plugin() -> Path:
    """The containerd-driver console script pip installed (as `make install-plugin` finds it)."""
    candidates = [Path(sysconfig.get_path("scripts")) / DRIVER]
    if found := shutil.which(DRIVER):
        candidates.append(Path(found))
    for path in candidates:
        if os.access(path, os.X_OK):
            return path.resolve()
    pytest.fail(f"{DRIVER} is not installed for {sys.executable} (make dev)", pytrace=False)


def agent_config(*, tmp: Path, ports: list[int], address: str, namespace: str, bridge: str, volume: Path) -> str:
    q = json.dumps  # an HCL string literal, for the paths
    return f"""\
# written by tests/e2e/test_nomad_examples.py
data_dir             = {q(str(tmp / "data"))}
plugin_dir           = {q(str(tmp / "plugins"))}
bind_addr            = "127.0.0.1"
disable_update_check = true

ports {{
  http = {ports[0]}
  rpc  = {ports[1]}
  serf = {ports[2]}
}}

client {{
  enabled = true

  # Debian's containernetworking-plugins, for example/bridge.nomad
  cni_path              = "/usr/lib/cni"
  cni_config_dir        = {q(str(tmp / "cni"))}
  bridge_network_name   = {q(bridge)}
  bridge_network_subnet = {q(BRIDGE_SUBNET)}

  # no cloud metadata probes: traffic stays on 127.0.0.0/8
  options = {{
    "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean"
  }}

  # example/volume_mount.nomad
  host_volume "s1" {{
    path      = {q(str(volume))}
    read_only = false
  }}
}}

plugin "{DRIVER}" {{
  config {{
    containerd_runtime = "io.containerd.runc.v2"
    address            = {q(address)}
    namespace          = {q(namespace)}
    stats_interval     = "5s"
    allow_privileged   = true
  }}
}}
"""


def wait_ready(agent: Agent) -> None:
    """Bounded wait for a ready node whose containerd-driver is detected and healthy."""
    seen = "no answer yet"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (rc := agent.proc.poll()) is not None:
            pytest.fail(f"nomad agent exited with {rc} while starting\n{agent.log_tail()}", pytrace=False)
        try:
            agent.get("/v1/agent/health")  # 200 once both server and client are up
            for stub in agent.get("/v1/nodes"):
                node = agent.get(f"/v1/node/{stub['ID']}")
                info = (node.get("Drivers") or {}).get(DRIVER)
                seen = f"node {node.get('ID')} status {node.get('Status')!r}, {DRIVER}: {info}"
                if node.get("Status") == "ready" and info and info.get("Detected") and info.get("Healthy"):
                    return
        except (OSError, urllib.error.HTTPError, ValueError) as exc:
            seen = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    pytest.fail(f"the agent's node and {DRIVER} did not become ready; last seen: {seen}\n{agent.log_tail()}",
                pytrace=False)


def stop_agent(agent: Agent) -> None:
    if agent.proc.poll() is None:
        agent.proc.send_signal(signal.SIGINT)  # graceful: a dev agent destroys its allocs
        try:
            agent.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            agent.proc.kill()
            agent.proc.wait(timeout=30)
    # whatever the agent started and left in its session (plugins, logmon)
    try:
        os.killpg(agent.proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def containers(agent: Agent) -> list[str]:
    from nomad_ctr import Client

    with Client(address=agent.containerd, namespace=agent.namespace, timeout=30.0) as c:
        return sorted(container.id for container in c.containers.list())


def empty_namespace(agent: Agent) -> None:
    from nomad_ctr import Client, errors

    with Client(address=agent.containerd, namespace=agent.namespace, timeout=30.0) as c:
        for container in c.containers.list():
            try:
                container.delete(force=True)
            except errors.NotFound:
                pass
        for image in c.images.list():
            try:
                c.images.remove(image.name, sync=True)
            except errors.NotFound:
                pass
    # content is garbage-collected asynchronously: retry a while
    for _ in range(60):
        res = subprocess.run(
            ["ctr", "--address", agent.containerd, "namespaces", "remove", agent.namespace],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if res.returncode == 0 or "not found" in res.stderr:
            return
        time.sleep(0.5)


def remove_bridge(agent: Agent) -> None:
    # Nomad leaves its bridge and its NOMAD-ADMIN accept rule behind; both carry our
    # unique bridge name, so nothing of the VM's own agent is touched
    rules = subprocess.run(["iptables", "-S", "NOMAD-ADMIN"], capture_output=True, text=True, check=False)
    for rule in rules.stdout.splitlines():
        if rule.startswith("-A ") and f" {agent.bridge} " in f"{rule} ":
            subprocess.run(["iptables", "-D", *rule.split()[1:]], capture_output=True, check=False)
    if Path("/sys/class/net", agent.bridge).exists():
        subprocess.run(["ip", "link", "del", agent.bridge], capture_output=True, check=False)


# --- jobs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    path: Path
    id: str
    task: str
    batch: bool

    @classmethod
    def read(cls, path: Path) -> Job:
        text = path.read_text()
        job = re.search(r'^job\s+"([^"]+)"', text, re.MULTILINE)
        tasks = re.findall(r'^\s*task\s+"([^"]+)"', text, re.MULTILINE)
        kind = re.search(r'^\s*type\s*=\s*"(service|batch|system|sysbatch)"', text, re.MULTILINE)
        assert job and len(tasks) == 1, f"{path.name}: expected one job with one task"
        return cls(path, job.group(1), tasks[0], bool(kind and kind.group(1) == "batch"))


def events(state: dict[str, Any]) -> list[str]:
    out = []
    for ev in state.get("Events") or []:
        detail = ev.get("DisplayMessage") or ev.get("DriverError") or ev.get("Message") or ""
        out.append(f"{ev.get('Type')}: {detail}")
    return out


def _problem(alloc: dict[str, Any], state: dict[str, Any], job: Job) -> str | None:
    if alloc.get("ClientStatus") in ("failed", "lost"):
        return f"alloc is {alloc.get('ClientStatus')}: {alloc.get('ClientDescription')}"
    if state.get("Failed"):
        return "task failed"
    for ev in state.get("Events") or []:
        kind = ev.get("Type")
        if kind in FAILURE_EVENTS:
            return f"task event {kind!r}"
        if kind == "Terminated" and (not job.batch or ev.get("ExitCode")):
            return f"task terminated (exit code {ev.get('ExitCode')})"
    if not job.batch and state.get("State") == "dead":
        return "service task is dead"
    return None


def _describe(agent: Agent, job: Job, alloc: dict[str, Any] | None) -> str:
    lines = [f"job {job.id} ({job.path.name})"]
    if alloc:
        state = (alloc.get("TaskStates") or {}).get(job.task) or {}
        lines.append(f"alloc {alloc.get('ID')} client status {alloc.get('ClientStatus')!r}, "
                     f"task {job.task!r} state {state.get('State')!r}")
        lines += [f"  {e}" for e in events(state)]
    else:
        try:
            for ev in agent.get(f"/v1/job/{job.id}/evaluations"):
                lines.append(f"  eval {ev.get('ID')}: {ev.get('Status')} {ev.get('StatusDescription', '')} "
                             f"failed placements: {json.dumps(ev.get('FailedTGAllocs'))}")
        except (OSError, urllib.error.HTTPError, ValueError) as exc:
            lines.append(f"  (no evaluations: {exc})")
    return "\n".join(lines) + "\n" + agent.log_tail()


def _latest_alloc(agent: Agent, job: Job) -> dict[str, Any] | None:
    stubs = agent.get(f"/v1/job/{job.id}/allocations")
    if not stubs:
        return None
    latest = max(stubs, key=lambda s: s.get("CreateIndex", 0))
    return dict(agent.get(f"/v1/allocation/{latest['ID']}"))


def wait_started(agent: Agent, job: Job) -> dict[str, Any]:
    """Bounded wait until the task runs (service) or the alloc completed (batch)."""
    alloc: dict[str, Any] | None = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        alloc = _latest_alloc(agent, job)
        if alloc:
            state = (alloc.get("TaskStates") or {}).get(job.task) or {}
            if problem := _problem(alloc, state, job):
                pytest.fail(f"{problem}\n{_describe(agent, job, alloc)}", pytrace=False)
            if job.batch and alloc.get("ClientStatus") == "complete":
                return alloc
            if not job.batch and state.get("State") == "running":
                return alloc
        time.sleep(0.5)
    want = "complete" if job.batch else "running"
    pytest.fail(f"not {want} in time\n{_describe(agent, job, alloc)}", pytrace=False)


def logs(agent: Agent, alloc: dict[str, Any], task: str, kind: str = "stdout") -> str:
    try:
        return agent.text(f"/v1/client/fs/logs/{alloc['ID']}", task=task, type=kind,
                          origin="start", offset="0", plain="true")
    except (OSError, urllib.error.HTTPError):
        return ""  # the log file may not exist yet


def wait_logs(agent: Agent, alloc: dict[str, Any], task: str, *needles: str) -> str:
    """Bounded wait until the task's stdout holds every needle; returns it."""
    text = ""
    for _ in range(240):
        text = logs(agent, alloc, task)
        if all(n in text for n in needles):
            return text
        time.sleep(0.25)
    missing = [n for n in needles if n not in text]
    stderr = logs(agent, alloc, task, "stderr")
    pytest.fail(f"stdout of {task} lacks {missing}:\n{text}\nstderr:\n{stderr}", pytrace=False)


def stop_job(agent: Agent, job: Job) -> dict[str, Any] | None:
    """`nomad job stop`, then a bounded wait until the alloc is terminal and its container
    is gone from containerd (DestroyTask ran). Returns the final alloc."""
    from nomad_ctr.driver.specbuild import container_id_for

    try:
        stopped = bool(agent.get(f"/v1/job/{job.id}").get("Stop"))
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    if not stopped:
        agent.cli("job", "stop", "-detach", job.id)
    alloc: dict[str, Any] | None = None
    cid = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        alloc = _latest_alloc(agent, job)
        if alloc is None:
            return None
        state = (alloc.get("TaskStates") or {}).get(job.task) or {}
        cid = container_id_for(alloc["ID"], job.task)
        if alloc.get("ClientStatus") in TERMINAL and state.get("State") in (None, "dead"):
            if cid not in containers(agent):
                return alloc
        time.sleep(0.5)
    pytest.fail(f"after `nomad job stop`, alloc not terminal or container {cid} still in containerd\n"
                f"{_describe(agent, job, alloc)}", pytrace=False)


def purge_job(agent: Agent, job: Job) -> None:
    try:
        agent.delete(f"/v1/job/{job.id}", purge="true")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise


def stop_all_jobs(agent: Agent) -> None:
    # whatever a failed test left behind
    for stub in agent.get("/v1/jobs"):
        agent.cli("job", "stop", "-purge", "-detach", stub["ID"], check=False)


def start_agent(tmp: Path, *, address: str, namespace: str, bridge: str, volume: Path) -> Agent:
    """`nomad agent -dev` with agent_config() in tmp and the installed plugin linked into
    its plugin_dir; returns once its node and the containerd-driver are ready."""
    (tmp / "plugins").mkdir()
    (tmp / "cni").mkdir()
    (tmp / "plugins" / DRIVER).symlink_to(installed_plugin())
    ports = free_ports(3)
    config = tmp / "agent.hcl"
    config.write_text(
        agent_config(tmp=tmp, ports=ports, address=address, namespace=namespace, bridge=bridge, volume=volume)
    )
    addr = f"http://127.0.0.1:{ports[0]}"
    env = nomad_env(addr)
    log = tmp / "agent.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["nomad", "agent", "-dev", f"-config={config}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=tmp, start_new_session=True,
        )
    agent = Agent(proc=proc, addr=addr, log=log, env=env, namespace=namespace,
                  containerd=address, volume=volume, bridge=bridge)
    try:
        wait_ready(agent)
    except BaseException:
        shutdown(agent)
        raise
    return agent


def shutdown(agent: Agent) -> list[str]:
    """Stop every job and the agent, clean the containerd namespace and Nomad's bridge;
    returns the containers that were still in the namespace once the agent had gone."""
    try:
        if agent.proc.poll() is None:
            stop_all_jobs(agent)
    finally:
        stop_agent(agent)
        try:
            leftovers = containers(agent)
            empty_namespace(agent)
        finally:
            remove_bridge(agent)
    return leftovers
