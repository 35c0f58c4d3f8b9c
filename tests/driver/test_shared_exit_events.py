"""Task exits come from one containerd event subscription shared by all tasks.

Runs in-process (the plugin fixture's DriverService lives in the pytest process), so the
counts below are of this process: the bridge's live subscription handles (debug.handles),
the driver's "exit-events" threads and the OS threads in /proc/self/task (Go's too).

What this proves and what it does not:
- starting 7 more tasks after the first adds no subscription, no event thread, and at
  most a small constant of OS threads (none per task);
- with the periodic reconcile pushed out of reach (RECONCILE_EVERY) and every status
  check (check_task) counted, each exit reaches WaitTask through a /tasks/exit event.
- It does not cover WaitTask itself: each open WaitTask RPC holds one worker thread of
  the gRPC server's pool (sync server, see plugin.build_server), so the thread counts
  are taken with no WaitTask open.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from driverkit import Alloc, Plugin, task_config

from nomad_ctr import _bridge
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver import exits, taskrunner
from nomad_ctr.driver.exits import ExitWatcher

pytestmark = pytest.mark.driver

TASKS = 8
THREAD_SLACK = 4  # threads the runtimes may add over 7 starts, whatever the count of tasks


def subscriptions() -> int:
    return int(_bridge.call("debug.handles", {}).get("subscription", 0))


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def event_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "exit-events")


def start_trapping(plugin: Plugin, a: Alloc, image: str, code: int) -> driver_pb2.TaskConfig:
    script = f"trap 'exit {code}' USR1; echo ready; while true; do sleep 0.1; done"
    task = a.task(task_config(image=image, command="sh", args=["-c", script]))
    plugin.start(task)
    a.stdout.wait_for("ready")
    return task


class Spies:
    """Records exit events dispatched and every status check / reconcile made."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.exit_events: dict[str, int | None] = {}
        self.checks = 0
        self.reconciles = 0
        dispatch, reconcile = ExitWatcher._dispatch, ExitWatcher.reconcile

        def spy_dispatch(watcher: ExitWatcher, event: Any) -> None:
            if event.topic == "/tasks/exit" and (not event.id or event.id == event.container_id):
                with self.lock:
                    self.exit_events[event.container_id] = event.exit_code
            dispatch(watcher, event)

        def spy_reconcile(watcher: ExitWatcher) -> None:
            with self.lock:
                self.reconciles += 1
            reconcile(watcher)

        def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.lock:
                    self.checks += 1
                return fn(*args, **kwargs)
            return wrapper

        monkeypatch.setattr(exits, "RECONCILE_EVERY", 1e9)  # no periodic safety net
        monkeypatch.setattr(ExitWatcher, "_dispatch", spy_dispatch)
        monkeypatch.setattr(ExitWatcher, "reconcile", spy_reconcile)
        monkeypatch.setattr(exits, "check_task", counted(exits.check_task))
        monkeypatch.setattr(taskrunner, "check_task", counted(taskrunner.check_task))

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            return self.checks, self.reconciles


def test_one_subscription_no_thread_per_task_exits_by_event(
    plugin: Plugin, alloc, images, monkeypatch: pytest.MonkeyPatch
) -> None:
    spies = Spies(monkeypatch)
    allocs = [alloc(f"t{i}") for i in range(TASKS)]  # their log-reader threads exist from here on
    subs_before = subscriptions()

    tasks = [start_trapping(plugin, allocs[0], images.plain, 10)]
    subs_one, threads_one, watchers_one = subscriptions(), os_threads(), event_threads()
    assert subs_one == subs_before + 1  # the first task made the one subscription

    tasks += [start_trapping(plugin, allocs[i], images.plain, 10 + i) for i in range(1, TASKS)]
    assert subscriptions() == subs_one
    assert event_threads() == watchers_one
    grown = os_threads() - threads_one
    assert grown <= THREAD_SLACK, f"{grown} more OS threads after {TASKS - 1} more tasks"

    cids = {
        task.id: plugin.driver.InspectTask(driver_pb2.InspectTaskRequest(task_id=task.id), timeout=10)
        .driver.attributes["container_id"]
        for task in tasks
    }
    # Nomad's way: a WaitTask per task, open before the exits
    results: dict[str, driver_pb2.WaitTaskResponse | grpc.RpcError] = {}

    def wait(task_id: str) -> None:
        try:
            results[task_id] = plugin.wait(task_id, timeout=60)
        except grpc.RpcError as exc:
            results[task_id] = exc

    waiters = [threading.Thread(target=wait, args=(t.id,), daemon=True) for t in tasks]
    for w in waiters:
        w.start()

    checks_before, reconciles_before = spies.snapshot()
    for task in tasks:
        plugin.driver.SignalTask(driver_pb2.SignalTaskRequest(task_id=task.id, signal="SIGUSR1"), timeout=10)
    for w in waiters:
        w.join(60)
        assert not w.is_alive(), "WaitTask did not return within 60 s"

    for i, task in enumerate(tasks):
        resp = results[task.id]
        assert isinstance(resp, driver_pb2.WaitTaskResponse), resp
        assert resp.result.exit_code == 10 + i and resp.err == ""
        assert spies.exit_events.get(cids[task.id]) == 10 + i  # the event carried this exit
    # no status check and no reconcile ran between the signals and the last WaitTask answer
    assert spies.snapshot() == (checks_before, reconciles_before)
    assert subscriptions() == subs_one
