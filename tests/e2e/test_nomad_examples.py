"""The example jobs (example/*.nomad) through a real Nomad: a `nomad agent -dev` of the
test's own loads the installed containerd-driver from a plugin_dir and runs them on the
test stack's containerd.

It runs only with a `nomad` binary on PATH, as root, with the test stack up; otherwise
every test skips and says why. The Vagrant dev VM has all of it (scripts/vagrant-
provision.sh installs Nomad and nomad_ctr in /opt/nomad-ctr/venv):

    vagrant ssh
    cd /vagrant && sudo scripts/stack.sh up
    sudo /opt/nomad-ctr/venv/bin/python -m pytest tests/e2e -rs

`scripts/test.sh` collects it with the rest. The agent keeps to itself (tests/e2e/
nomadkit.py): free ports on 127.0.0.1, data and plugin dirs in a temp dir, a Nomad bridge
name and subnet of its own, its own containerd namespace, no cloud-metadata fingerprinting.
The VM's systemd agent may keep running; the two still share Nomad's cgroup parent and the
driver's default CNI network (`systemctl stop nomad` if that gets in the way). The example
images come from tests/images/build.py, which pushes only what the registries lack.

Per example: `nomad job validate` (Nomad's own parser), then `nomad job run -detach`,
wait for the task to run (or, for batch jobs, to complete), check what the example is
there to show, `nomad job stop`, check its container is gone from containerd, purge.
State is read over Nomad's HTTP API; the CLI does what an operator would type.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nomadkit import (  # noqa: E402
    Agent,
    Job,
    events,
    purge_job,
    shutdown,
    start_agent,
    stop_job,
    wait_logs,
    wait_started,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,  # root and the test stack: tests/conftest.py checks both
    pytest.mark.skipif(
        shutil.which("nomad") is None,
        reason="no nomad binary on PATH: this test runs the example jobs through a real "
        "`nomad agent -dev` (the Vagrant VM has one: scripts/vagrant-provision.sh)",
    ),
    pytest.mark.timeout(600),
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example"
AUTH_PLACEHOLDER = "REPLACE-WITH-THE-REGISTRY-PASSWORD"
EXAMPLE_IMAGES = ("plain", "configured", "private", "hello")  # tests/images/build.py names


def all_examples() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.nomad"))


def _push_example_images() -> None:
    # the same builder scripts/test.sh runs; it pushes only images the registry lacks
    res = subprocess.run(
        [sys.executable, str(REPO / "tests" / "images" / "build.py"), "--only", *EXAMPLE_IMAGES],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if res.returncode != 0:
        pytest.fail(f"tests/images/build.py failed ({res.returncode}):\n{res.stdout}{res.stderr}", pytrace=False)


@pytest.fixture(scope="module")
def agent(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    _push_example_images()
    tmp = tmp_path_factory.mktemp("nomad-e2e")
    volume = tmp / "host_volume" / "s1"  # host volume "s1" of example/volume_mount.nomad
    volume.mkdir(parents=True)
    (volume / "bind.txt").write_text("hello\n")
    run_id = uuid.uuid4().hex[:8]
    a = start_agent(
        tmp,
        address=stack.containerd_address,
        namespace=f"nomad-e2e-{run_id}",
        bridge=f"ne2e{run_id}",  # an interface name: at most 15 characters
        volume=volume,
    )
    try:
        yield a
    finally:
        leftovers = shutdown(a)
    assert leftovers == [], f"containers left in namespace {a.namespace} after the agent stopped: {leftovers}"


# --- what each example is there to show -------------------------------------------------


@dataclass
class Run:
    agent: Agent
    job: Job
    alloc: dict[str, Any]

    def stdout(self, *needles: str) -> str:
        return wait_logs(self.agent, self.alloc, self.job.task, *needles)

    def exec(self, *cmd: str) -> str:
        res = self.agent.cli("alloc", "exec", "-i=false", "-t=false", "-task", self.job.task,
                             self.alloc["ID"], *cmd)
        return res.stdout.strip()

    def stop(self) -> dict[str, Any]:
        final = stop_job(self.agent, self.job)
        assert final is not None
        return final


def check_hello(r: Run) -> None:
    r.stdout("hello from nomad-ctr")


def check_server(r: Run) -> None:
    r.stdout("serving /srv/www on :8080 as web-1")
    assert r.exec("hostname") == "web-1"
    assert r.exec("pwd") == "/srv/www"
    assert r.exec("grep", "^Seccomp:", "/proc/1/status").split()[-1] == "2"
    # busybox httpd may need a moment to bind
    body = r.exec("sh", "-c", "for i in $(seq 20); do wget -qO- http://127.0.0.1:8080/ && exit 0; "
                  "sleep 0.5; done; exit 1")
    assert body == "hello from nomad-ctr"


def check_signal(r: Run) -> None:
    r.stdout("ready for signals")
    r.agent.cli("alloc", "signal", "-s", "SIGHUP", r.alloc["ID"], r.job.task)
    r.stdout("received SIGHUP")
    final = r.stop()  # kill_signal SIGTERM: the trap prints it and exits 0
    wait_logs(r.agent, final, r.job.task, "received SIGTERM")
    state = final["TaskStates"][r.job.task]
    exits = [ev.get("ExitCode") for ev in state.get("Events") or [] if ev.get("Type") == "Terminated"]
    assert exits == [0], events(state)


def check_capabilities(r: Run) -> None:
    out = r.stdout("CapEff:", "rootfs is read-only", "task dir is writable")
    eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    assert eff & (1 << 21), f"CAP_SYS_ADMIN (cap_add) missing from {eff:x}"
    assert not eff & (1 << 0), f"CAP_CHOWN (cap_drop) still in {eff:x}"


def check_privileged(r: Run) -> None:
    out = r.stdout("CapBnd:", "the host file is read-only")
    assert "/dev/loop0" in out
    assert Path("/etc/os-release").read_text().splitlines()[0] in out


def check_volume_mount(r: Run) -> None:
    out = r.stdout("wrote rw.txt to the host volume", "read-only target refuses writes")
    assert out.splitlines()[:2] == ["hello", "hello"]
    assert (r.agent.volume / "rw.txt").exists()
    assert not (r.agent.volume / "ro.txt").exists()


def check_dns(r: Run) -> None:
    out = r.stdout("somaxconn=", "ip_forward=")
    lines = out.splitlines()
    for line in ("nameserver 127.0.0.1", "nameserver 127.0.0.2", "search internal.corp",
                 "options ndots:2", "somaxconn=16384", "ip_forward=1"):
        assert line in lines, f"{line!r} not in:\n{out}"


def check_extra_hosts(r: Run) -> None:
    out = r.stdout("postgres", "redis")
    lines = out.splitlines()
    assert "127.0.1.1\tpostgres" in lines and "127.0.1.2\tredis" in lines, out


def check_entrypoint(r: Run) -> None:
    assert r.stdout("done") == "container1\ncontainer2\ndone\n"


def check_auth(r: Run) -> None:
    assert r.stdout("pulled with credentials") == "pulled with credentials\n"


def check_template(r: Run) -> None:
    # rendered by Nomad's template hook into local/, bind-mounted by a relative source
    r.stdout("# rendered by Nomad for template", "listen = 0.0.0.0:8080", f"alloc  = {r.alloc['ID']}")


def _mapped_port(alloc: dict[str, Any], label: str) -> tuple[str, int]:
    shared = (alloc.get("AllocatedResources") or {}).get("Shared") or {}
    for port in shared.get("Ports") or []:
        if port.get("Label") == label:
            return port.get("HostIP") or "127.0.0.1", int(port["Value"])
    for net in shared.get("Networks") or []:  # older layout
        for port in (net.get("DynamicPorts") or []) + (net.get("ReservedPorts") or []):
            if port.get("Label") == label:
                return net.get("IP") or "127.0.0.1", int(port["Value"])
    pytest.fail(f"no port {label!r} in the alloc: {json.dumps(shared)}", pytrace=False)


def _http_body(host: str, port: int) -> str:
    last: Exception | None = None
    for _ in range(100):  # bounded readiness loop
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request("GET", "/")
            resp = conn.getresponse()
            if resp.status == 200:
                return resp.read().decode()
            last = RuntimeError(f"HTTP {resp.status}")
        except OSError as exc:
            last = exc
        finally:
            conn.close()
        time.sleep(0.1)
    pytest.fail(f"nothing answered on {host}:{port}: {last}", pytrace=False)


def check_bridge(r: Run) -> None:
    host, port = _mapped_port(r.alloc, "http")
    r.stdout(f"listening on :8080 (host port {port})")
    assert _http_body(host, port) == "hello from a bridge network\n"


CHECKS: dict[str, Callable[[Run], None]] = {
    "hello": check_hello,
    "server": check_server,
    "signal": check_signal,
    "capabilities": check_capabilities,
    "privileged": check_privileged,
    "volume_mount": check_volume_mount,
    "dns": check_dns,
    "extra_hosts": check_extra_hosts,
    "entrypoint": check_entrypoint,
    "auth": check_auth,
    "template": check_template,
    "bridge": check_bridge,
}


def test_every_example_has_a_check() -> None:
    assert set(CHECKS) == set(all_examples())


@pytest.mark.parametrize("name", all_examples())
def test_example_validates(agent: Agent, name: str) -> None:
    res = agent.cli("job", "validate", str(EXAMPLES / f"{name}.nomad"), check=False)
    assert res.returncode == 0, f"nomad job validate {name}.nomad:\n{res.stdout}{res.stderr}"


@pytest.mark.parametrize("name", all_examples())
def test_example_runs(agent: Agent, stack: Any, name: str, tmp_path: Path) -> None:
    path = EXAMPLES / f"{name}.nomad"
    if name == "privileged" and not Path("/dev/loop0").exists():
        pytest.skip("privileged.nomad passes /dev/loop0 through and this host has none")
    if name == "auth":
        text = path.read_text()
        assert AUTH_PLACEHOLDER in text
        path = tmp_path / path.name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds the password
        with os.fdopen(fd, "w") as f:
            f.write(text.replace(AUTH_PLACEHOLDER, stack.registry_password))
    job = Job.read(path)
    agent.cli("job", "run", "-detach", str(path))
    try:
        alloc = wait_started(agent, job)
        CHECKS[name](Run(agent, job, alloc))
        if name == "auth":  # credentials never reach task events (the alloc's Job holds them)
            assert stack.registry_password not in json.dumps(alloc.get("TaskStates"))
    finally:
        stop_job(agent, job)
        purge_job(agent, job)
