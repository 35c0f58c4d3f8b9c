"""Concurrency, the fork guard and handle accounting."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from nomad_ctr import errors

pytestmark = pytest.mark.unit


def test_concurrent_calls_from_many_threads(bridge) -> None:
    def work(i: int) -> dict:
        bridge.call("debug.sleep", {"ms": 20})
        return bridge.call("debug.echo", {"i": i, "blob": "x" * (i * 100)})

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(work, range(64)))
    assert [r["i"] for r in results] == list(range(64))
    assert all(len(r["blob"]) == r["i"] * 100 for r in results)


def _wait_until_blocked(op) -> None:  # type: ignore[no-untyped-def]
    """Return once the debug.progress call on ``op`` has published step 1, i.e. it is
    inside Go, sleeping. The loop bound only turns a regression into a failure, not a hang."""
    progress = op.poll(0)
    for _ in range(120):
        if progress.get("step") == 1:
            return
        progress = op.poll(1)
    pytest.fail(f"the blocking call never started: {progress}")


def test_blocked_calls_overlap_and_release_the_gil(bridge) -> None:
    # An ordering proof, no clock: several calls are blocked inside Go at the same time;
    # while they stay blocked, another thread's bridge call returns and plain Python runs;
    # only then are the blocked calls released, by cancelling their ops. If gb_call held
    # the GIL, or calls were serialised, the blocked calls could not all report step 1,
    # and nothing else could run until their 120 s timeout, so they would end TIMEOUT.
    blocked_calls = 4
    ops = [bridge.Op() for _ in range(blocked_calls)]
    log: list[str] = []
    lock = threading.Lock()

    def note(entry: str) -> None:
        with lock:
            log.append(entry)

    def block(i: int) -> str:
        try:
            # Step 1 is published at once, then the call sleeps 10 minutes or until cancelled.
            bridge.call("debug.progress", {"steps": 2, "ms": 600_000}, op=ops[i], timeout=120)
        except errors.Cancelled:
            note(f"released {i}")
            return "cancelled"
        note(f"returned {i}")
        return "returned"

    pool = ThreadPoolExecutor(max_workers=blocked_calls + 1)
    try:
        futures = [pool.submit(block, i) for i in range(blocked_calls)]
        for op in ops:
            _wait_until_blocked(op)
        note("all blocked")

        echoed = pool.submit(bridge.call, "debug.echo", {"while": "blocked"}).result(timeout=60)
        note("other thread's bridge call returned")
        python = threading.Thread(target=note, args=("python ran",))
        python.start()
        python.join(timeout=60)

        still_blocked = [not f.done() for f in futures]
        for op in ops:
            op.cancel()
        outcomes = [f.result(timeout=60) for f in futures]
    finally:
        for op in ops:
            with contextlib.suppress(errors.ContainerdError):
                op.cancel()
        pool.shutdown(wait=True)
        for op in ops:
            op.close()

    assert echoed == {"while": "blocked"}
    assert still_blocked == [True] * blocked_calls
    assert outcomes == ["cancelled"] * blocked_calls
    assert log[:3] == ["all blocked", "other thread's bridge call returned", "python ran"]
    assert sorted(log[3:]) == [f"released {i}" for i in range(blocked_calls)]


def _handles(bridge) -> int:
    return bridge.call("debug.handles", {})["total"]


def test_no_handle_leaks_over_many_calls(bridge) -> None:
    before = _handles(bridge)
    for _ in range(500):
        with bridge.Op() as op:
            bridge.call("debug.echo", {"n": 1}, op=op)
            op.poll(0)
    for _ in range(200):
        with pytest.raises(errors.InvalidArgument):
            bridge.call("debug.error", {"status": 2, "message": "x"})
    assert _handles(bridge) == before


def test_forgotten_handle_is_released_by_the_backstop(bridge) -> None:
    import gc

    before = _handles(bridge)
    op = bridge.Op()
    assert _handles(bridge) == before + 1
    del op
    gc.collect()
    assert _handles(bridge) == before


def test_forked_child_gets_bridge_error_not_a_hang(bridge) -> None:
    bridge.info()  # loaded in the parent
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(r)
            try:
                bridge.call("debug.echo", {})
                os.write(w, b"CALLED")
            except errors.BridgeError as exc:
                os.write(w, b"BRIDGE_ERROR " + str(exc).encode()[:200])
                code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 30)
        data = os.read(r, 4096) if ready else b""
    finally:
        os.close(r)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("forked child hung")
    assert data.startswith(b"BRIDGE_ERROR"), data
    assert b"fork" in data
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent is unaffected.
    assert bridge.call("debug.echo", {"ok": 1}) == {"ok": 1}
