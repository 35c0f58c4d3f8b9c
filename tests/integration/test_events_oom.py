"""The event stream and OOM reporting."""

from __future__ import annotations

import threading
import time

import pytest

from nomad_ctr import Client, ContainerSpec, Event

pytestmark = pytest.mark.integration


def test_events_deliver_task_exit(client: Client, plain: str, cid: str) -> None:
    with client.events(topics=["/tasks/exit"]) as ev:
        result = client.containers.run(plain, ["sh", "-c", "exit 7"], id=cid, timeout=60)
        assert result.exit_code == 7
        got: Event | None = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            e = ev.get(timeout=5)
            if e is not None and e.container_id == cid:
                got = e
                break
        assert got is not None, "no /tasks/exit event for the container"
        assert got.topic == "/tasks/exit" and got.exit_code == 7
        assert got.namespace in ("", client.namespace)


def test_events_close_from_another_thread_ends_iteration(client: Client) -> None:
    ev = client.events()
    seen: list[Event] = []
    finished = threading.Event()

    def consume() -> None:
        for e in ev:
            seen.append(e)
        finished.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    time.sleep(0.3)
    ev.close()
    assert finished.wait(10), "iteration did not end after close()"
    t.join(5)
    assert ev.closed
    assert list(ev) == []  # a closed stream stays ended


def test_oom_killed(client: Client, plain: str, cid: str) -> None:
    # The shell doubles a string until the 16 MiB limit makes the kernel kill it.
    spec = ContainerSpec(args=["sh", "-c", "x=aaaaaaaa; while :; do x=$x$x; done"],
                         memory_limit="16m", memory_swap="16m")
    with client.events(topics=["/tasks/oom"]) as ev:
        result = client.containers.run(plain, spec=spec, id=cid, timeout=120)
        assert result.exit_code == 137
        assert result.oom_killed is True
        e = ev.get(timeout=10)
        assert e is not None and e.topic == "/tasks/oom" and e.container_id == cid


def test_sigkill_is_not_oom(client: Client, plain: str, cid: str) -> None:
    spec = ContainerSpec(args=["sleep", "600"], memory_limit="16m")
    with client.containers.create(cid, plain, spec=spec) as c:
        c.start()
        c.kill("SIGKILL")
        status = c.wait(timeout=30)
        assert status.exit_code == 137 and status.oom_killed is False


def test_self_sigkill_is_not_oom(client: Client, plain: str) -> None:
    # Init of a pid namespace cannot SIGKILL itself, so a child does it and init passes
    # the status on; the cgroup's OOM counter stays zero.
    spec = ContainerSpec(args=["sh", "-c", "sh -c 'kill -9 $$'; exit $?"], memory_limit="16m")
    result = client.containers.run(plain, spec=spec, timeout=60)
    assert result.exit_code == 137 and result.oom_killed is False
