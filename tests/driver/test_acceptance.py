"""Acceptance through the Go harness that plays Nomad (tests/harness): the real
`containerd-driver` executable launched over go-plugin, jobs decoded with hcldec."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from harness import Session, run_task, write_agent_config, write_job

pytestmark = pytest.mark.driver


@pytest.fixture
def agent(tmp_path: Path, namespace: str, ns_client, stack) -> Path:
    return write_agent_config(tmp_path / "agent.hcl", address=stack.containerd_address, namespace=namespace)


def test_run_lifecycle(agent: Path, tmp_path: Path, images) -> None:
    job = write_job(tmp_path / "job.nomad", image=images.plain,
                    config={"command": "sh", "args": ["-c", "echo hello-$NOMAD_TASK_NAME; exit 42"]})
    res = run_task(agent, job, "main", stats=2, stats_interval="500ms").check()
    data = res.data
    assert data["result"]["exit_code"] == 42, data
    assert data["result"]["oom_killed"] is False
    assert "hello-main" in data["stdout"]


def test_stop_with_kill_signal(agent: Path, tmp_path: Path, images) -> None:
    script = "trap 'echo got-INT; exit 5' INT; echo ready; while true; do sleep 0.1; done"
    job = write_job(tmp_path / "job.nomad", image=images.plain, kill_signal="SIGINT", kill_timeout="10s",
                    config={"command": "sh", "args": ["-c", script]})
    res = run_task(agent, job, "main", stop_after="2s").check()
    assert res.data["result"]["exit_code"] == 5, res.data
    assert "got-INT" in res.data["stdout"]


def test_plugin_sigkill_recover_true_exit_code(agent: Path, tmp_path: Path, images) -> None:
    script = "trap 'echo bye; exit 9' TERM; echo ready; while true; do sleep 0.1; done"
    long_job = write_job(tmp_path / "long.nomad", image=images.plain, task="long",
                         config={"command": "sh", "args": ["-c", script]})
    short_job = write_job(tmp_path / "short.nomad", image=images.plain, task="short",
                          config={"command": "sh", "args": ["-c", "echo ready; sleep 2; exit 7"]})
    with Session(agent) as s:
        s.launch()
        long_id = s.start(long_job, "long")["task"]["task_id"]
        short_id = s.start(short_job, "short")["task"]["task_id"]
        s.call("kill_plugin")
        time.sleep(3.5)  # the short task exits while no plugin runs
        s.launch()
        s.call("recover", task_id=long_id)  # driver config cleared, as after an agent restart
        s.call("recover", task_id=short_id)
        assert s.wait(short_id, answer_timeout=30)["exit_code"] == 7
        inspect = s.call("inspect", task_id=long_id)["inspect"]
        assert inspect["task"]["state"] == "RUNNING", inspect
        pending = s.submit("wait", task_id=long_id)
        s.stop(long_id, kill_timeout="10s", signal="SIGTERM")
        result = pending.result(60)
        assert result["ok"], result
        assert result["result"]["exit_code"] == 9
        for task_id in (long_id, short_id):
            s.destroy(task_id)
