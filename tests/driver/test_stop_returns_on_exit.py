"""StopTask returns as soon as the task exits on its kill signal, not after the timeout.

The proof is the gRPC deadline, not a stopwatch: StopTask is given a kill timeout ten
times longer than the call's deadline, so a StopTask that sat out its timeout (or
escalated to SIGKILL after it) would fail with DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import pytest
from driverkit import Plugin, task_config

from nomad_ctr._pb import driver_pb2

pytestmark = pytest.mark.driver

KILL_TIMEOUT_S = 600
CALL_DEADLINE_S = 60


def test_stop_returns_when_the_task_exits_on_its_signal(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    # USR1, not the default TERM: the exit code shows the given signal was the one sent
    script = "trap 'echo got-usr1; exit 3' USR1; echo ready; while true; do sleep 0.1; done"
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", script]))
    plugin.start(task)
    a.stdout.wait_for("ready")

    plugin.driver.StopTask(
        driver_pb2.StopTaskRequest(task_id=task.id, timeout={"seconds": KILL_TIMEOUT_S}, signal="SIGUSR1"),
        timeout=CALL_DEADLINE_S,
    )  # raises DEADLINE_EXCEEDED if StopTask waited for the kill timeout

    result = plugin.wait(task.id, timeout=30).result
    assert (result.exit_code, result.signal) == (3, 0)  # its own exit, no SIGKILL escalation
    a.stdout.wait_for("got-usr1")
    status = plugin.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id), timeout=10).task
    assert status.state == driver_pb2.EXITED
