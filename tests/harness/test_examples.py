"""The example jobs and agent config (example/) stay valid: every task's config block
decodes with the plugin's own schema the way Nomad decodes it (nomad-harness
schema-decode: hcldec on the HCL JSON body, cty msgpack with the value's own type),
and the bytes then parse with our config parser. example/agent.hcl decodes through the
agent's validation launch (agent-config).

The integration tests run the examples end to end on the test stack (`nomad-harness
run`, or a session where the test talks to the task while it runs). The harness models
host volumes, the group's dns block and bridge networks (a netns per alloc on a test
bridge, ports mapped on 127.0.0.1), so bridge.nomad runs too.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nomad_ctr.driver.config import (
    DriverConfig,
    TaskConfig,
    check_task_allowed,
    parse_driver_config,
    parse_task_config,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))

import cgroups
import harness as nh

from nomad_ctr import Client
from nomad_ctr.driver.state import decode_state

pytestmark = pytest.mark.driver

EXAMPLES = Path(__file__).resolve().parents[2] / "example"
AGENT = EXAMPLES / "agent.hcl"
TEST_REGISTRIES = ("127.0.0.1:5000/", "127.0.0.1:5001/")
AUTH_PLACEHOLDER = "REPLACE-WITH-THE-REGISTRY-PASSWORD"

# what each example is there to show, checked on the parsed config
EXPECTED: dict[str, Callable[[TaskConfig], bool]] = {
    "hello.nomad": lambda c: c.image.endswith("/nomad-ctr/hello:latest"),
    "server.nomad": lambda c: (
        c.hostname == "web-1" and c.cwd == "/srv/www" and c.seccomp and c.command == "/bin/sh"
    ),
    "signal.nomad": lambda c: c.command == "/bin/sh" and "trap" in c.args[1],
    "capabilities.nomad": lambda c: (
        c.readonly_rootfs
        and c.cap_add == ("CAP_SYS_ADMIN", "CAP_IPC_OWNER", "CAP_IPC_LOCK")
        and c.cap_drop == ("CAP_CHOWN", "CAP_SYS_CHROOT", "CAP_DAC_OVERRIDE")
    ),
    "privileged.nomad": lambda c: (
        c.privileged
        and c.devices == ("/dev/loop0",)
        and [(m.type, m.source, "ro" in m.options) for m in c.mounts]
        == [("bind", "/etc/os-release", True)]
    ),
    "volume_mount.nomad": lambda c: c.mounts == (),  # volume_mount is Nomad's, not ours
    "dns.nomad": lambda c: (
        dict(c.sysctl) == {"net.core.somaxconn": "16384", "net.ipv4.ip_forward": "1"}
    ),
    "extra_hosts.nomad": lambda c: (
        c.host_network
        and [(h.host, h.ip) for h in c.extra_hosts]
        == [("postgres", "127.0.1.1"), ("redis", "127.0.1.2")]
    ),
    "entrypoint.nomad": lambda c: c.entrypoint == ("/bin/sh",) and c.args[0] == "-c",
    "auth.nomad": lambda c: c.auth is not None and c.auth.username == "nomadctr",
    "template.nomad": lambda c: (
        [(m.source, m.target) for m in c.mounts] == [("local/app.conf", "/etc/app/app.conf")]
    ),
    "bridge.nomad": lambda c: c.command == "/bin/sh" and "httpd" in c.args[1],
}


def example_tasks() -> list[tuple[str, str]]:
    """(job file name, task name) for every task of every example job."""
    out = []
    for path in sorted(EXAMPLES.glob("*.nomad")):
        for task in re.findall(r'^\s*task\s+"([^"]+)"', path.read_text(), re.MULTILINE):
            out.append((path.name, task))
    return out


def decode(job: Path, task: str) -> dict[str, Any]:
    # --allow-unhealthy: decoding needs no containerd at the example's address
    res = nh.run_harness(
        "schema-decode",
        *nh.plugin_flags(),
        "--agent",
        str(AGENT),
        "--job",
        str(job),
        "--task",
        task,
        "--allow-unhealthy",
        "--log-level",
        "error",
        timeout=60,
    )
    return res.check().data


def test_every_feature_has_an_example() -> None:
    names = {name for name, _ in example_tasks()}
    assert names == set(EXPECTED), names ^ set(EXPECTED)
    assert len(example_tasks()) == len(EXPECTED)  # one task per job


@pytest.mark.parametrize(("job", "task"), example_tasks())
def test_example_decodes_and_parses(job: str, task: str) -> None:
    data = decode(EXAMPLES / job, task)
    cfg = parse_task_config(base64.b64decode(data["msgpack_b64"]))
    assert cfg.image.startswith(TEST_REGISTRIES), "examples use the test stack's images"
    assert EXPECTED[job](cfg), cfg
    check_task_allowed(cfg, agent_example_config())


_agent_cache: list[DriverConfig] = []


def agent_example_config() -> DriverConfig:
    if not _agent_cache:
        data = nh.agent_config(AGENT).check().data
        _agent_cache.append(parse_driver_config(base64.b64decode(data["msgpack_b64"])))
    return _agent_cache[0]


def test_agent_example_decodes() -> None:
    cfg = agent_example_config()
    assert cfg.containerd_runtime == "io.containerd.runc.v2"
    assert cfg.stats_interval == 5.0
    assert cfg.allow_privileged  # privileged.nomad needs it


def test_agent_example_declares_host_volume_s1() -> None:
    # volume_mount.nomad uses it; the harness does not read client blocks, so check the text
    text = AGENT.read_text()
    assert re.search(r'host_volume\s+"s1"\s*{[^}]*path\s*=\s*"/tmp/host_volume/s1"', text)
    assert re.search(r'source\s*=\s*"s1"', (EXAMPLES / "volume_mount.nomad").read_text())


# --- end to end on the test stack ----------------------------------------------------------


def _ctr(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", address, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def stack_agent(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An agent config on the test stack with its own containerd namespace, removed
    (containers, images, namespace) afterwards."""
    ns = f"nctr-examples-{uuid.uuid4().hex[:8]}"
    path = tmp_path_factory.mktemp("agent") / "agent.hcl"
    yield nh.write_agent_config(path, address=stack.containerd_address, namespace=ns)
    address = stack.containerd_address
    for cid in _ctr(address, "-n", ns, "containers", "ls", "-q").stdout.split():
        _ctr(address, "-n", ns, "tasks", "kill", "-s", "KILL", cid)
        _ctr(address, "-n", ns, "tasks", "rm", "-f", cid)
        _ctr(address, "-n", ns, "containers", "rm", cid)
    for ref in _ctr(address, "-n", ns, "images", "ls", "-q").stdout.split():
        _ctr(address, "-n", ns, "images", "rm", ref)
    for _ in range(20):  # content is garbage-collected asynchronously
        if _ctr(address, "namespaces", "remove", ns).returncode == 0:
            break
        time.sleep(0.5)


def run_example(agent: Path, job: Path, task: str, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    kw.setdefault("alloc_root", tmp_path / "allocs")
    return nh.run_task(agent, job, task, **kw).check().data


def clean_exit(data: dict[str, Any]) -> bool:
    return data["result"]["exit_code"] == 0 and not data["result"]["err"]


@pytest.mark.integration
def test_hello_runs(stack_agent: Path, tmp_path: Path) -> None:
    data = run_example(stack_agent, EXAMPLES / "hello.nomad", "hello", tmp_path, stop_after="4s")
    assert data["stdout"].startswith("hello from nomad-ctr\n")
    assert data["stdout"].endswith("hello: stopping on SIGTERM\n")  # its trap ran
    assert data["stopped"] and (data["result"]["exit_code"], data["result"]["signal"]) == (0, 0)


@pytest.mark.integration
def test_entrypoint_prints_and_exits(stack_agent: Path, tmp_path: Path) -> None:
    data = run_example(stack_agent, EXAMPLES / "entrypoint.nomad", "entrypoint", tmp_path)
    assert clean_exit(data)
    assert data["stdout"] == "container1\ncontainer2\ndone\n"


@pytest.mark.integration
def test_signal_prints_each_signal(stack_agent: Path, tmp_path: Path) -> None:
    data = run_example(
        stack_agent,
        EXAMPLES / "signal.nomad",
        "signal",
        tmp_path,
        signals=("SIGHUP@2s", "SIGUSR1@3s"),
        stop_after="5s",
    )
    assert clean_exit(data)  # the SIGTERM trap exits 0
    assert data["stdout"].splitlines() == [
        "ready for signals",
        "received SIGHUP",
        "received SIGUSR1",
        "received SIGTERM",
    ]


@pytest.mark.integration
def test_signal_invalid_name_is_rejected(stack_agent: Path, tmp_path: Path) -> None:
    # Roblox's scenario 002 checks only this refusal; delivery is checked above
    with nh.Session(stack_agent) as s:
        s.launch()
        tid = s.start(EXAMPLES / "signal.nomad", "signal", alloc_root=str(tmp_path))["task"]["task_id"]
        answer = s.call("signal", task_id=tid, signal="INVALID", check=False)
        assert not answer["ok"]
        assert "invalid signal" in answer["error"] and "INVALID" in answer["error"], answer
        assert s.call("inspect", task_id=tid)["inspect"]["task"]["state"] == "RUNNING"
        s.call("signal", task_id=tid, signal="SIGUSR2")
        for _ in range(100):
            if "received SIGUSR2" in s.call("logs", task_id=tid)["stdout"]:
                break
            time.sleep(0.1)
        assert "received SIGUSR2" in s.call("logs", task_id=tid)["stdout"]
        s.stop(tid)
        assert s.wait(tid)["exit_code"] == 0
        s.destroy(tid)


@pytest.mark.integration
def test_server_hostname_cwd_memory_and_http(stack_agent: Path, tmp_path: Path) -> None:
    # Roblox's scenario 001, through exec as `nomad alloc exec` does it
    with nh.Session(stack_agent) as s:
        s.launch()
        task = s.start(EXAMPLES / "server.nomad", "server", alloc_root=str(tmp_path))["task"]
        tid = task["task_id"]

        def run(*cmd: str) -> str:
            answer = s.call("exec", task_id=tid, command=list(cmd), timeout="20s")
            assert answer["result"]["exit_code"] == 0, answer
            return str(answer["stdout"]).strip()

        assert run("hostname") == "web-1"
        assert run("pwd") == "/srv/www"
        assert run("grep", "^Seccomp:", "/proc/1/status").split()[-1] == "2"
        # busybox httpd may need a moment to bind
        body = run(
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do "
            "wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.5; done; exit 1",
        )
        assert body == "hello from nomad-ctr"
        # cgroup v1 (this VM): the reservation is the soft limit, memory_max the hard one;
        # read on the host, at the path the container's /proc/self/cgroup names
        lines = run("cat", "/proc/self/cgroup").splitlines()
        if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # v2: one unified tree
            unified = [ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")]
            assert unified, lines
            cgroup = Path("/sys/fs/cgroup") / unified[0].lstrip("/")
            soft_file, hard_file = "memory.low", "memory.max"
        else:
            memory = [ln.split(":", 2)[2] for ln in lines if ln.split(":")[1] == "memory"]
            assert memory, lines
            cgroup = Path("/sys/fs/cgroup/memory") / memory[0].lstrip("/")
            soft_file, hard_file = "memory.soft_limit_in_bytes", "memory.limit_in_bytes"
        assert (cgroup / soft_file).read_text().strip() == str(64 << 20)
        assert (cgroup / hard_file).read_text().strip() == str(128 << 20)
        s.stop(tid)
        assert s.wait(tid)["exit_code"] == 0
        s.destroy(tid)


@pytest.mark.integration
def test_capabilities_and_readonly_rootfs(stack_agent: Path, tmp_path: Path) -> None:
    data = run_example(
        stack_agent, EXAMPLES / "capabilities.nomad", "caps", tmp_path, stop_after="3s"
    )
    assert clean_exit(data)
    eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", data["stdout"]).group(1), 16)  # type: ignore[union-attr]
    assert eff & (1 << 21)  # CAP_SYS_ADMIN added
    assert not eff & (1 << 0)  # CAP_CHOWN dropped
    assert "rootfs is read-only" in data["stdout"]
    assert "task dir is writable" in data["stdout"]


@pytest.mark.integration
def test_privileged_device_and_readonly_bind(stack_agent: Path, tmp_path: Path) -> None:
    data = run_example(
        stack_agent, EXAMPLES / "privileged.nomad", "privileged", tmp_path, stop_after="3s"
    )
    assert clean_exit(data)
    out = data["stdout"]
    # the whole bounding set: every capability the host kernel has (cap_last_cap) that
    # the runtime holds itself (a sandboxed host may lack some)
    bnd = int(re.search(r"CapBnd:\s*([0-9a-f]+)", out).group(1), 16)  # type: ignore[union-attr]
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    assert bnd == ((1 << (last + 1)) - 1) & _runtime_bounding_set()
    assert bnd >> last == 1
    assert "/dev/loop0" in out
    assert Path("/etc/os-release").read_text().splitlines()[0] in out
    assert "the host file is read-only" in out


def _runtime_bounding_set() -> int:
    pid = Path("/run/nomad-ctr-test/containerd.pid")
    proc = f"/proc/{pid.read_text().strip()}/status" if pid.exists() else "/proc/self/status"
    return int(re.search(r"CapBnd:\s*([0-9a-f]+)", Path(proc).read_text()).group(1), 16)  # type: ignore[union-attr]


@pytest.mark.integration
def test_allow_privileged_false_refuses_the_privileged_example(
    stack_agent: Path, tmp_path: Path
) -> None:
    # Roblox's scenario 011: the operator turns privileged tasks off
    agent = tmp_path / "agent.hcl"
    agent.write_text(
        stack_agent.read_text().replace("  config {\n", "  config {\n    allow_privileged = false\n", 1)
    )
    assert "allow_privileged = false" in agent.read_text()
    res = nh.run_task(agent, EXAMPLES / "privileged.nomad", "privileged", alloc_root=tmp_path / "allocs")
    assert res.returncode == 3 and res.data["stage"] == "start_task", res.data
    assert "Running privileged jobs are not allowed" in res.data["error"]


@pytest.mark.integration
def test_dns_and_sysctls(stack_agent: Path, tmp_path: Path) -> None:
    data = run_example(stack_agent, EXAMPLES / "dns.nomad", "dns", tmp_path, stop_after="3s")
    assert clean_exit(data)
    out = data["stdout"].splitlines()
    assert [ln for ln in out if not ln.startswith("#")][:4] == [
        "nameserver 127.0.0.1",
        "nameserver 127.0.0.2",
        "search internal.corp",
        "options ndots:2",
    ]
    assert "somaxconn=16384" in out
    assert "ip_forward=1" in out


@pytest.mark.integration
def test_volume_mount_rw_and_ro(stack_agent: Path, tmp_path: Path) -> None:
    volume = tmp_path / "host_volume" / "s1"
    volume.mkdir(parents=True)
    (volume / "bind.txt").write_text("hello\n")
    agent = tmp_path / "agent.hcl"
    agent.write_text(
        f'client {{\n  host_volume "s1" {{\n    path = "{volume}"\n  }}\n}}\n'
        + stack_agent.read_text()
    )
    data = run_example(agent, EXAMPLES / "volume_mount.nomad", "volumes", tmp_path, stop_after="3s")
    assert clean_exit(data)
    assert data["stdout"].splitlines()[:2] == ["hello", "hello"]
    assert "Read-only file system" in data["stdout"]
    assert sorted(p.name for p in volume.iterdir()) == ["bind.txt", "rw.txt"]


@pytest.mark.integration
def test_extra_hosts_with_host_network(stack_agent: Path, tmp_path: Path) -> None:
    # Roblox's scenario 007: the host's /etc/hosts plus the tab-separated entries
    data = run_example(
        stack_agent, EXAMPLES / "extra_hosts.nomad", "hosts", tmp_path, stop_after="3s"
    )
    assert clean_exit(data)
    lines = data["stdout"].splitlines()
    assert "127.0.1.1\tpostgres" in lines and "127.0.1.2\tredis" in lines
    host_lines = [ln for ln in Path("/etc/hosts").read_text().splitlines() if ln.strip()]
    assert all(ln in lines for ln in host_lines)


def _http_get(host: str, port: int) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        return resp.read().decode()
    finally:
        conn.close()


def _wait_http(host: str, port: int) -> str:
    """Bounded readiness loop (not a timed assertion)."""
    last: Exception | None = None
    for _ in range(200):
        try:
            return _http_get(host, port)
        except (OSError, AssertionError) as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"no answer from {host}:{port}: {last}")


@pytest.mark.integration
def test_bridge_group_network_with_mapped_port(stack_agent: Path, tmp_path: Path) -> None:
    from nomad_ctr import net

    with nh.Session(stack_agent) as s:
        s.call("launch")
        task = s.call("start", job=str(EXAMPLES / "bridge.nomad"), task="web",
                      alloc_root=str(tmp_path / "allocs"))["task"]
        try:
            group = task["group_network"]
            netns, ip = group["netns_path"], group["ip"]
            assert netns == f"/var/run/netns/{task['alloc_id']}" and net.netns_exists(netns)
            (port,) = group["ports"]
            assert port["label"] == "http" and port["to"] == 8080 and port["host_ip"] == "127.0.0.1"
            # Nomad owns this network: the driver advertises no address of its own
            assert "network_override" not in task
            hello = "hello from a bridge network\n"
            assert _wait_http("127.0.0.1", port["value"]) == hello  # portmap, localhost SNAT
            # the task's own address: from the host across the group's bridge, and from inside
            assert _wait_http(ip, 8080) == hello
            assert net.call_in_netns(netns, _wait_http, ip, 8080) == hello
            for _ in range(100):  # the log copier may be a moment behind
                logs = s.call("logs", task_id=task["task_id"])["stdout"]
                if "listening" in logs:
                    break
                time.sleep(0.05)
            assert f"listening on :8080 (host port {port['value']})" in logs
            s.call("stop", task_id=task["task_id"])
        finally:
            s.call("destroy", task_id=task["task_id"], check=False)
        assert not net.netns_exists(netns)
        assert not Path(netns).exists()
        rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                               check=True).stdout
        assert task["alloc_id"] not in rules and f"--dport {port['value']} " not in rules


@pytest.mark.integration
def test_template_bind_mount_with_relative_source(stack_agent: Path, tmp_path: Path) -> None:
    # the harness renders no templates: put the file where Nomad's template hook would
    alloc_dir = tmp_path / "alloc"
    (alloc_dir / "app" / "local").mkdir(parents=True)
    (alloc_dir / "app" / "local" / "app.conf").write_text("listen = 0.0.0.0:8080\n")
    data = run_example(
        stack_agent,
        EXAMPLES / "template.nomad",
        "app",
        tmp_path,
        alloc_root=None,
        alloc_dir=alloc_dir,
        stop_after="3s",
    )
    assert clean_exit(data)
    assert data["stdout"] == "listen = 0.0.0.0:8080\n"


@pytest.mark.integration
def test_auth_pulls_the_private_image(stack_agent: Path, stack: Any, tmp_path: Path) -> None:
    text = (EXAMPLES / "auth.nomad").read_text()
    assert AUTH_PLACEHOLDER in text
    job = tmp_path / "auth.nomad"
    job.write_text(text.replace(AUTH_PLACEHOLDER, stack.registry_password))
    data = run_example(stack_agent, job, "auth", tmp_path)
    assert clean_exit(data)
    assert data["stdout"] == "pulled with credentials\n"


@pytest.mark.integration
def test_auth_placeholder_is_refused(stack_agent: Path, stack: Any, tmp_path: Path) -> None:
    res = nh.run_task(stack_agent, EXAMPLES / "auth.nomad", "auth", alloc_root=tmp_path / "allocs")
    assert res.returncode == 3 and res.data["stage"] == "start_task"
    assert "pull access denied" in res.data["error"]
    told = _driver_said(res)
    assert AUTH_PLACEHOLDER not in told
    assert stack.registry_password not in told


def _driver_said(res: nh.HarnessResult) -> str:
    """The error, task and plugin events and the plugin's logs (harness stderr);
    not `task`, where the harness echoes the config it sent."""
    return json.dumps({k: v for k, v in res.data.items() if k != "task"}) + res.stderr


def _containerd_holds(address: str, ns: str) -> dict[str, list[str]]:
    """Everything a start can leave in a namespace: containers, tasks, images, leases,
    active ingests, blobs, snapshots."""
    def listing(*args: str) -> str:
        done = _ctr(address, "-n", ns, *args)
        assert done.returncode == 0, done.stderr  # an empty answer must mean empty
        return done.stdout

    def ids(*args: str) -> list[str]:
        return listing(*args, "-q").split()

    def rows(*args: str) -> list[str]:  # listings without -q: drop the header line
        return [ln.split()[0] for ln in listing(*args).splitlines()[1:] if ln.strip()]

    return {
        "containers": ids("containers", "ls"),
        "tasks": rows("tasks", "ls"),
        "images": ids("images", "ls"),
        "leases": ids("leases", "ls"),
        "active": rows("content", "active"),
        "content": ids("content", "ls"),
        "snapshots": rows("snapshots", "ls"),
    }


@pytest.fixture
def fresh_agent(stack: Any, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(agent config, namespace): a containerd namespace of the test's own, so that
    'nothing left' is not blurred by other tests; removed afterwards."""
    ns = f"nctr-pull-{uuid.uuid4().hex[:8]}"
    yield nh.write_agent_config(tmp_path / "agent.hcl", address=stack.containerd_address, namespace=ns), ns
    address = stack.containerd_address
    for cid in _ctr(address, "-n", ns, "containers", "ls", "-q").stdout.split():
        _ctr(address, "-n", ns, "tasks", "rm", "-f", cid)
        _ctr(address, "-n", ns, "containers", "rm", cid)
    for ref in _ctr(address, "-n", ns, "images", "ls", "-q").stdout.split():
        _ctr(address, "-n", ns, "images", "rm", ref)
    for _ in range(20):
        if _ctr(address, "namespaces", "remove", ns).returncode == 0 or ns not in _ctr(
            address, "namespaces", "ls", "-q"
        ).stdout.split():
            break
        time.sleep(0.5)


@pytest.mark.integration
@pytest.mark.parametrize("credentials", ["none", "wrong"])
def test_auth_private_image_refused_without_the_right_credentials(
    fresh_agent: tuple[Path, str], stack: Any, tmp_path: Path, credentials: str
) -> None:
    # issue 4 scenario 9, failing half: no auth block anywhere (job or agent), or a
    # wrong password that contains the real one (so echoing it would show the secret)
    agent, ns = fresh_agent
    assert not re.search(r"\bauth\s*[{=]", agent.read_text())  # no driver-level auth
    private = f"{stack.private_registry}/nomad-ctr/private:latest"
    auth_hcl = ""
    if credentials == "wrong":
        auth_hcl = (
            f"auth {{\n  username = {json.dumps(stack.registry_user)}\n"
            f"  password = {json.dumps('wrong-' + stack.registry_password)}\n}}"
        )
    job = nh.write_job(
        tmp_path / "private.nomad", image=private, task="private",
        config={"command": "/bin/sh", "args": ["-c", "echo must not run"]}, config_hcl=auth_hcl,
    )
    assert bool(re.search(r"\bauth\s*[{=]", job.read_text())) == (credentials == "wrong")

    res = nh.run_task(agent, job, "private", alloc_root=tmp_path / "allocs")
    assert res.returncode == 3, res.data
    assert res.data["stage"] == "start_task" and res.data["grpc_code"] == "FailedPrecondition", res.data
    assert res.data["recoverable"] is False  # retrying the same credentials cannot help
    assert f"pull access denied for {private}: " in res.data["error"], res.data["error"]
    assert stack.registry_password not in _driver_said(res)
    assert _containerd_holds(stack.containerd_address, ns) == {
        k: [] for k in ("containers", "tasks", "images", "leases", "active", "content", "snapshots")
    }


# --- beyond the examples: env, user, OOM and pids_limit through the harness ---------------


@pytest.mark.integration
def test_env_and_user_reach_the_process(stack_agent: Path, stack: Any, tmp_path: Path) -> None:
    job = nh.write_job(
        tmp_path / "env.nomad", image=f"{stack.registry}/nomad-ctr/configured:latest", task="envuser",
        user="1234:2345", env={"FOO": "from-job"},
        config={"args": ['echo "$FOO $GREETING $NOMAD_TASK_NAME $(id -u):$(id -g)"']},
    )
    data = run_example(stack_agent, job, "envuser", tmp_path)
    assert clean_exit(data)
    assert data["stdout"] == "from-job hello envuser 1234:2345\n"


@pytest.mark.integration
def test_oom_kill_reported(stack_agent: Path, stack: Any, tmp_path: Path) -> None:
    job = nh.write_job(
        tmp_path / "oom.nomad", image=f"{stack.registry}/nomad-ctr/plain:latest", task="hog", memory=16,
        config={"command": "sh", "args": ["-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"]},
    )
    data = run_example(stack_agent, job, "hog", tmp_path)
    assert data["result"]["exit_code"] == 137 and data["result"]["oom_killed"] is True, data["result"]


def _online_cpus() -> list[int]:
    """The host's online CPU ids, from the kernel's list format ("0-3,6")."""
    out: list[int] = []
    for part in Path("/sys/devices/system/cpu/online").read_text().strip().split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


@pytest.mark.integration
def test_reserved_cores_are_the_cpuset(stack_agent: Path, stack: Any, tmp_path: Path) -> None:
    # resources { cores = 1 }: the harness reserves the highest online core, as the
    # client passes it (LinuxResources.cpuset_cpus); on more than one CPU that is not
    # core 0 and not the unrestricted set, so a driver ignoring it fails here
    online = _online_cpus()
    if len(online) < 2:
        pytest.skip("one online CPU: a reserved core looks like no reservation")
    want = str(online[-1])
    script = "grep Cpus_allowed_list /proc/self/status; echo cores=$NOMAD_CPU_CORES; echo ready; sleep 300"
    job = nh.write_job(
        tmp_path / "cores.nomad", image=f"{stack.registry}/nomad-ctr/plain:latest", task="pinned",
        cores=1, config={"command": "sh", "args": ["-c", script]},
    )
    assert "cores = 1" in job.read_text() and "cpu =" not in job.read_text()
    with nh.Session(stack_agent) as s:
        s.launch()
        task = s.start(job, "pinned", alloc_root=str(tmp_path / "allocs"))["task"]
        tid = task["task_id"]
        try:
            assert task["cpuset_cpus"] == want
            deadline = time.monotonic() + 60
            while "ready" not in (out := s.call("logs", task_id=tid)["stdout"]):
                assert time.monotonic() < deadline, out
                time.sleep(0.2)
            # inside the container: the task's own process and an exec'd one
            assert f"Cpus_allowed_list:\t{want}\n" in out, out
            assert f"cores={want}\n" in out, out
            ans = s.call("exec", task_id=tid, command=["grep", "Cpus_allowed_list", "/proc/self/status"])
            assert ans["stdout"].split() == ["Cpus_allowed_list:", want], ans
            # on the host: the container's cpuset cgroup (v1 cpuset.cpus, v2 .effective)
            state = decode_state(base64.b64decode(task["handle"]["driver_state"]))
            with Client(stack.containerd_address, namespace=state.namespace) as c:
                pid = c.containers.get(state.container_id).status().pid
            assert cgroups.read(pid, "cpuset", "cpuset.cpus", "cpuset.cpus.effective") == want
        finally:
            s.call("destroy", task_id=tid)


@pytest.mark.integration
def test_more_cores_than_the_node_has_is_not_placed(stack_agent: Path, stack: Any, tmp_path: Path) -> None:
    n = len(_online_cpus()) + 1
    job = nh.write_job(
        tmp_path / "greedy.nomad", image=f"{stack.registry}/nomad-ctr/plain:latest", task="greedy",
        cores=n, config={"command": "true"},
    )
    res = nh.run_task(stack_agent, job, "greedy", alloc_root=tmp_path / "allocs")
    assert res.returncode == 3 and res.data["stage"] == "resources", res.data
    assert f"resources.cores = {n}" in res.data["error"]


@pytest.mark.integration
def test_pids_limit_enforced(stack_agent: Path, stack: Any, tmp_path: Path) -> None:
    script = "i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); echo started=$i; done; exit 0"
    job = nh.write_job(
        tmp_path / "pids.nomad", image=f"{stack.registry}/nomad-ctr/plain:latest", task="forks",
        config={"command": "sh", "args": ["-c", script], "pids_limit": 10},
    )
    data = run_example(stack_agent, job, "forks", tmp_path)
    assert data["result"]["exit_code"] == 2 and "can't fork" in data["stderr"], data
    assert "started=40" not in data["stdout"]
