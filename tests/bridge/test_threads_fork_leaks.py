"""Concurrency, the fork guard and handle accounting."""

from __future__ import annotations

import os
import select
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


def test_calls_overlap_instead_of_serialising(bridge) -> None:
    # 8 sleeps of 300 ms in 8 threads finish long before 8 x 300 ms if the GIL is
    # released around gb_call; the bound is loose on purpose (not a benchmark).
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: bridge.call("debug.sleep", {"ms": 300}), range(8)))
    assert time.monotonic() - start < 8 * 0.3


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
