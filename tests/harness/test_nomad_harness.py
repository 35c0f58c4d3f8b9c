"""The containerd-driver plugin driven exactly as Nomad drives it, through
tests/harness/nomad-harness (go-plugin launch, hcldec + cty msgpack config, alloc dir,
log FIFOs, the task RPCs): config decoding, exit codes, stop with kill_signal and
escalation to SIGKILL, signals, exec, stats, plugin crash + RecoverTask, and nothing
left in containerd afterwards.

Each module run gets its own containerd namespace (set through the agent config),
removed at the end.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))

import harness as nh

pytestmark = [pytest.mark.driver, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]


def ctr(address: str, namespace: str, *args: str) -> str:
    return subprocess.run(
        ["ctr", "--address", address, "-n", namespace, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def containers(address: str, namespace: str) -> list[str]:
    return ctr(address, namespace, "containers", "ls", "-q").split()


def leftovers(address: str, namespace: str) -> dict[str, list[str]]:
    """What a destroyed task could leave in containerd: containers, tasks, leases and
    active snapshots (a container's rootfs; the image's own layers are committed ones)."""
    rows = {what: ctr(address, namespace, *args).splitlines()[1:]
            for what, args in (("tasks", ("tasks", "ls")), ("leases", ("leases", "ls")),
                               ("snapshots", ("snapshots", "ls")))}
    return {
        "containers": containers(address, namespace),
        "tasks": rows["tasks"],
        "leases": rows["leases"],
        "active snapshots": [r for r in rows["snapshots"] if r.split()[-1:] == ["Active"]],
    }


NOTHING_LEFT = {"containers": [], "tasks": [], "leases": [], "active snapshots": []}


def ctr_quiet(address: str, *args: str) -> bool:
    """Best-effort ctr call for cleanup; True if it succeeded."""
    done = subprocess.run(
        ["ctr", "--address", address, *args],
        capture_output=True,
        check=False,
        timeout=30,
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def namespace(stack: Any) -> Iterator[str]:
    ns = f"nctr-harness-{uuid.uuid4().hex[:8]}"
    yield ns
    address = stack.containerd_address
    for cid in containers(address, ns):
        ctr_quiet(address, "-n", ns, "tasks", "kill", "-s", "KILL", cid)
        ctr_quiet(address, "-n", ns, "tasks", "rm", "-f", cid)
        ctr_quiet(address, "-n", ns, "containers", "rm", cid)
    for ref in ctr(address, ns, "images", "ls", "-q").split():
        ctr_quiet(address, "-n", ns, "images", "rm", ref)
    # content is garbage-collected asynchronously after the image removal
    for _ in range(20):
        if ctr_quiet(address, "namespaces", "remove", ns):
            break
        time.sleep(0.5)


@pytest.fixture
def agent(stack: Any, namespace: str, tmp_path: Path) -> Path:
    return nh.write_agent_config(
        tmp_path / "agent.hcl", address=stack.containerd_address, namespace=namespace
    )


def sh_job(tmp_path: Path, image: str, script: str, **kw: Any) -> Path:
    return nh.write_job(
        tmp_path / "job.nomad",
        image=image,
        config={"command": "sh", "args": ["-c", script]},
        **kw,
    )


def run(agent: Path, job: Path, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    res = nh.run_task(agent, job, "main", alloc_root=tmp_path / "allocs", **kw).check()
    return res.data


# --- config decoding -------------------------------------------------------------------


def test_agent_config_defaults_and_msgpack(agent: Path) -> None:
    data = nh.agent_config(agent).check().data
    value = data["value"]
    assert value["containerd_runtime"] == nh.DEFAULT_RUNTIME
    assert value["enabled"] is True
    # the msgpack Nomad would send is the decoded object, keys sorted
    decoded = msgpack.unpackb(base64.b64decode(data["msgpack_b64"]), raw=False)
    assert decoded == value
    assert list(decoded) == sorted(decoded)


def test_agent_config_unknown_key_refused(tmp_path: Path, stack: Any) -> None:
    agent = nh.write_agent_config(
        tmp_path / "agent.hcl", extra={"contanerd_runtime": "x"}
    )
    res = nh.agent_config(agent)
    assert res.returncode == 3, res.stderr[-2000:]
    assert res.data["stage"] == "agent_config"
    assert "contanerd_runtime" in res.data["error"]


def test_schema_decode_example_job(agent: Path) -> None:
    data = (
        nh.schema_decode(REPO / "example" / "hello.nomad", "hello", agent=agent)
        .check()
        .data
    )
    assert data["value"]["image"].endswith("/nomad-ctr/hello:latest")
    decoded = msgpack.unpackb(base64.b64decode(data["msgpack_b64"]), raw=False)
    assert decoded == data["value"]


def test_schema_decode_rejects_unknown_task_option(
    agent: Path, tmp_path: Path, images: Any
) -> None:
    job = nh.write_job(
        tmp_path / "job.nomad", image=images.plain, config={"imagee": "x"}
    )
    res = nh.schema_decode(job, "main", agent=agent)
    assert res.returncode == 3
    assert res.data["stage"] == "validate"
    assert "imagee" in res.data["error"]


# --- lifecycle through `run` -----------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_codes_and_logs(
    code: int, agent: Path, tmp_path: Path, images: Any, stack: Any, namespace: str
) -> None:
    job = sh_job(
        tmp_path, images.plain, f"echo out-$NOMAD_TASK_NAME; echo err >&2; exit {code}"
    )
    data = run(agent, job, tmp_path)
    assert data["result"] == {
        "exit_code": code,
        "signal": 0,
        "oom_killed": False,
        "err": "",
    }
    assert data["stdout"] == "out-main\n"
    assert data["stderr"] == "err\n"
    assert Path(data["task"]["stdout_file"]).name == "main.stdout.0"
    assert "destroy_error" not in data
    assert leftovers(stack.containerd_address, namespace) == NOTHING_LEFT


def test_stop_honours_kill_signal(agent: Path, tmp_path: Path, images: Any) -> None:
    script = (
        "trap 'echo got USR1; exit 3' USR1; echo ready; while true; do sleep 0.1; done"
    )
    job = sh_job(
        tmp_path, images.plain, script, kill_signal="SIGUSR1", kill_timeout="20s"
    )
    data = run(agent, job, tmp_path, stop_after="2s")
    assert data["stopped"] is True and "stop_error" not in data
    assert data["result"]["exit_code"] == 3
    assert data["result"]["signal"] == 0
    assert "got USR1" in data["stdout"]


def test_stop_escalates_to_sigkill(agent: Path, tmp_path: Path, images: Any) -> None:
    script = "trap '' TERM; echo ready; while true; do sleep 0.1; done"
    job = sh_job(tmp_path, images.plain, script, kill_timeout="1s")
    data = run(agent, job, tmp_path, stop_after="2s")
    assert data["stopped"] is True
    assert data["result"]["signal"] == 9


# --- scripted scenarios through `session` ----------------------------------------------


def wait_for_log(
    session: nh.Session, task_id: str, text: str, seconds: float = 30
) -> str:
    deadline = time.monotonic() + seconds
    while True:
        out = session.call("logs", task_id=task_id)["stdout"]
        if text in out or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def test_signal_exec_and_stats(
    agent: Path, tmp_path: Path, images: Any, stack: Any, namespace: str
) -> None:
    script = "trap 'echo got HUP' HUP; echo ready; while true; do sleep 0.1; done"
    job = sh_job(tmp_path, images.plain, script, kill_timeout="5s")
    with nh.Session(agent=agent) as s:
        plugin = s.launch()["plugin"]
        assert plugin["fingerprint"]["health"] == "HEALTHY"
        assert plugin["fingerprint"]["attributes"]["driver.containerd-driver"] == "true"
        task = s.start(job, "main", alloc_root=str(tmp_path / "allocs"))["task"]
        tid = task["task_id"]
        assert "ready" in wait_for_log(s, tid, "ready")

        dup = s.call(
            "start",
            job=str(job),
            task="main",
            task_id=tid,
            check=False,
        )
        assert not dup["ok"] and dup["stage"] == "start_task"  # duplicate task id

        s.call("signal", task_id=tid, signal="SIGHUP")
        assert "got HUP" in wait_for_log(s, tid, "got HUP")

        ex = s.call(
            "exec", task_id=tid, command=["sh", "-c", "echo hi; echo oops >&2; exit 3"]
        )
        assert (ex["stdout"], ex["stderr"], ex["result"]["exit_code"]) == (
            "hi\n",
            "oops\n",
            3,
        )

        st = s.call("exec_stream", task_id=tid, command=["cat"], stdin="abc\n")
        assert st["stdout"] == "abc\n"
        assert st["result"]["exit_code"] == 0

        # a busy exec in the task's cgroup while the stats stream samples it
        busy = s.submit("exec", task_id=tid, command=[
            "sh", "-c", "end=$(($(date +%s) + 4)); while [ $(date +%s) -lt $end ]; do :; done"])
        samples = s.call("stats", task_id=tid, interval="1s", count=3)["samples"]
        assert busy.result(60)["ok"]
        assert len(samples) == 3
        mem = samples[-1]["agg"]["memory"]
        assert "RSS" in mem["measured_fields"] and mem["rss"] > 0 and mem["usage"] >= mem["rss"]
        cpu = samples[-1]["agg"]["cpu"]
        assert {"PERCENT", "TOTAL_TICKS", "USER_MODE", "SYSTEM_MODE"} <= set(cpu["measured_fields"]), cpu
        # one busy shell: clearly above idle, at most the machine's CPUs
        assert 20.0 < cpu["percent"] <= 100.0 * (os.cpu_count() or 1) and cpu["total_ticks"] > 0, cpu
        assert samples[0]["timestamp"] <= samples[1]["timestamp"] <= samples[2]["timestamp"]

        pending = s.submit("wait", task_id=tid)
        s.stop(tid, kill_timeout="2s", signal="SIGTERM")
        result = pending.result(60)
        assert result["ok"], result
        s.destroy(tid)
    assert leftovers(stack.containerd_address, namespace) == NOTHING_LEFT


def test_plugin_crash_then_recover_reports_true_exit_code(
    agent: Path, tmp_path: Path, images: Any, stack: Any, namespace: str
) -> None:
    job = sh_job(tmp_path, images.plain, "echo started; sleep 4; echo done; exit 7")
    with nh.Session(agent=agent) as s:
        s.launch()
        tid = s.start(job, "main", alloc_root=str(tmp_path / "allocs"))["task"][
            "task_id"
        ]
        pending = s.submit("wait", task_id=tid)
        first_pid = s.call("kill_plugin")["pid"]
        lost = pending.result(30)
        assert not lost["ok"]  # WaitTask fails when the plugin dies, as in Nomad

        relaunched = s.launch()["plugin"]
        assert relaunched["pid"] != first_pid
        s.call(
            "recover", task_id=tid
        )  # driver config cleared, as after an agent restart
        result = s.wait(tid, answer_timeout=60)
        assert (result["exit_code"], result["signal"]) == (7, 0)
        logs = s.destroy(tid)
        assert "started" in logs["stdout"] and "done" in logs["stdout"]
    assert leftovers(stack.containerd_address, namespace) == NOTHING_LEFT


def test_agent_restart_recovers_from_handle_file(
    agent: Path, tmp_path: Path, images: Any, stack: Any, namespace: str
) -> None:
    """A graceful agent shutdown (Driver.Shutdown, go-plugin kill) leaves the task
    running; a new agent process recovers it from the persisted handle."""
    job = sh_job(tmp_path, images.plain, "echo started; sleep 4; exit 5")
    handle = tmp_path / "handle.json"
    started = nh.run_harness(
        "start",
        *nh.plugin_flags(),
        "--agent",
        str(agent),
        "--job",
        str(job),
        "--task",
        "main",
        "--alloc-root",
        str(tmp_path / "allocs"),
        "--handle-out",
        str(handle),
        "--leave",
        "shutdown",
    ).check()
    assert started.data["left"] == "shutdown"
    live = leftovers(stack.containerd_address, namespace)
    # the check below sees a live task's objects: its container, task and rootfs snapshot
    assert len(live["containers"]) == len(live["tasks"]) == len(live["active snapshots"]) == 1, live
    assert live["containers"][0] in live["active snapshots"][0].split()[0]

    recovered = nh.run_harness(
        "recover",
        *nh.plugin_flags(),
        "--agent",
        str(agent),
        "--handle",
        str(handle),
        "--double-wait",
    ).check()
    assert recovered.data["result"]["exit_code"] == 5
    assert recovered.data["second_wait"]["exit_code"] == 5
    assert "destroy_error" not in recovered.data
    assert leftovers(stack.containerd_address, namespace) == NOTHING_LEFT


def test_memory_limit_oom_killed(agent: Path, tmp_path: Path, images: Any) -> None:
    # resources.memory = 16 MB -> linux_resources.memory_limit_bytes = 16 MiB
    script = "echo start; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"
    job = sh_job(tmp_path, images.plain, script, memory=16)
    data = run(agent, job, tmp_path)
    assert data["result"]["oom_killed"] is True
    assert data["stdout"] == "start\n"
