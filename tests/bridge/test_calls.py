"""call(): status -> exception mapping, panics, timeouts, cancellation, progress polling."""

from __future__ import annotations

import threading
import time

import pytest

from nomad_ctr import errors

pytestmark = pytest.mark.unit

STATUS_CLASSES = {
    1: errors.Unknown, 2: errors.InvalidArgument, 3: errors.NotFound,
    4: errors.AlreadyExists, 5: errors.FailedPrecondition, 6: errors.Unavailable,
    7: errors.PermissionDenied, 8: errors.Unauthenticated, 9: errors.Timeout,
    10: errors.Cancelled, 11: errors.NotImplementedByServer, 12: errors.ResourceExhausted,
    13: errors.Internal, 14: errors.BridgePanic, 15: errors.Conflict,
}


@pytest.mark.parametrize("status,cls", sorted(STATUS_CLASSES.items()))
def test_each_status_raises_its_class(bridge, status: int, cls: type) -> None:
    with pytest.raises(cls) as exc:
        bridge.call("debug.error", {"status": status, "message": f"boom {status}"})
    assert type(exc.value) is cls
    assert exc.value.message == f"boom {status}"
    assert exc.value.code == bridge.status_name(status)
    assert isinstance(exc.value, errors.ContainerdError)


def test_invalid_argument_is_a_value_error_and_timeout_a_timeout_error(bridge) -> None:
    with pytest.raises(ValueError):
        bridge.call("debug.error", {"status": 2, "message": "bad"})
    with pytest.raises(TimeoutError):
        bridge.call("debug.error", {"status": 9, "message": "slow"})


@pytest.mark.parametrize("method,message,cls", [
    ("images.get", 'image "x" not found', errors.ImageNotFound),
    ("containers.get", 'container "x" not found', errors.ContainerNotFound),
    ("tasks.status", 'task "x" not found', errors.TaskNotFound),
    ("tasks.status", 'container "x" not found', errors.ContainerNotFound),
    ("containers.create", 'image "docker.io/library/x:latest" not found', errors.ImageNotFound),
    ("images.remove", "something else is missing", errors.ImageNotFound),
    ("exec.read", "no live exec handle 5", errors.NotFound),
])
def test_not_found_is_specialised_by_message_then_method(method: str, message: str, cls: type) -> None:
    exc = errors.from_status("NOT_FOUND", message, method)
    assert type(exc) is cls
    assert isinstance(exc, errors.NotFound)


def test_unknown_method_is_not_implemented(bridge) -> None:
    with pytest.raises(errors.NotImplementedByServer, match="no.such"):
        bridge.call("no.such", {})


def test_unknown_request_field_is_named(bridge) -> None:
    with pytest.raises(errors.InvalidArgument, match="surprise"):
        bridge.call("debug.sleep", {"ms": 1, "surprise": True})


def test_stale_handle_is_not_found(bridge) -> None:
    with pytest.raises(errors.NotFound):
        bridge.call("client.version", {"client": 987654321})


def test_panic_is_recovered_and_the_process_survives(bridge) -> None:
    with pytest.raises(errors.BridgePanic, match="debug.panic called on purpose"):
        bridge.call("debug.panic", {})
    # The runtime is intact: further calls (and more panics) still work.
    assert bridge.call("debug.echo", {"still": "alive"}) == {"still": "alive"}
    with pytest.raises(errors.BridgePanic):
        bridge.call("debug.panic", {})


def test_deadline_gives_timeout(bridge) -> None:
    with pytest.raises(errors.Timeout):
        bridge.call("debug.sleep", {"ms": 60_000}, timeout=0.05)


def test_negative_timeout_is_invalid(bridge) -> None:
    with pytest.raises(errors.InvalidArgument, match="timeout"):
        bridge.call("debug.sleep", {"ms": 1}, timeout=-1)


def test_op_cancel_from_another_thread_gives_cancelled(bridge) -> None:
    with bridge.Op() as op:
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                bridge.call("debug.sleep", {"ms": 60_000}, op=op)
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                outcome.append(exc)

        t = threading.Thread(target=run)
        t.start()
        time.sleep(0.05)
        op.cancel()
        t.join(10)
        assert not t.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], errors.Cancelled)


def test_op_poll_sees_progress_until_done(bridge) -> None:
    with bridge.Op() as op:
        assert op.poll(0) == {}
        t = threading.Thread(target=bridge.call, args=("debug.progress", {"steps": 5, "ms": 20}), kwargs={"op": op})
        t.start()
        seen = []
        while True:
            p = op.poll(5)
            if p:
                seen.append(p["step"])
            if p.get("done"):
                break
        t.join(10)
    assert seen[-1] == 5
    assert seen == sorted(seen)


def test_closed_handle_refuses_use(bridge) -> None:
    op = bridge.Op()
    op.close()
    op.close()  # idempotent
    with pytest.raises(errors.BridgeError, match="closed"):
        op.cancel()
