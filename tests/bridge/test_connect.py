"""client.connect without a containerd: a missing or refusing socket fails at once with
UNAVAILABLE naming the address; a socket that accepts but never answers gets the timeout.

The fast cases use a dial timeout of ten minutes: waiting it out would hang the test, so
they pass only if the probe answered first (and their messages say so)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nomad_ctr import errors

pytestmark = pytest.mark.unit

LONG_MS = 600_000


def connect(bridge, address: str, timeout_ms: int = LONG_MS):  # type: ignore[no-untyped-def]
    return bridge.call("client.connect", {"address": address, "namespace": "x", "timeout_ms": timeout_ms},
                       timeout=timeout_ms / 1000 + 5)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer
    import tempfile

    with tempfile.TemporaryDirectory(prefix="nctr-") as d:
        yield Path(d)


def test_missing_socket_file_fails_at_once(bridge, short_dir: Path) -> None:  # type: ignore[no-untyped-def]
    address = str(short_dir / "missing.sock")
    with pytest.raises(errors.Unavailable) as info:
        connect(bridge, address)
    assert address in info.value.message and "no socket file" in info.value.message


def test_unix_scheme_is_understood(bridge, short_dir: Path) -> None:  # type: ignore[no-untyped-def]
    address = f"unix://{short_dir / 'missing.sock'}"
    with pytest.raises(errors.Unavailable, match="no socket file"):
        connect(bridge, address)


@pytest.mark.parametrize("kind", ["closed-listener", "regular-file"])
def test_socket_nobody_listens_on_fails_at_once(bridge, short_dir: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    path = short_dir / "dead.sock"
    if kind == "closed-listener":  # the file a crashed daemon leaves behind
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.close()
    else:
        path.write_text("not a socket")
    with pytest.raises(errors.Unavailable) as info:
        connect(bridge, str(path))
    assert str(path) in info.value.message and "connection refused" in info.value.message


def test_socket_that_accepts_but_never_answers_times_out(bridge, short_dir: Path) -> None:  # type: ignore[no-untyped-def]
    path = short_dir / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))
        s.listen(16)  # the kernel accepts; nobody ever speaks gRPC
        with pytest.raises(errors.Unavailable) as info:
            connect(bridge, str(path), timeout_ms=300)
    assert str(path) in info.value.message
    assert "no socket file" not in info.value.message and "connection refused" not in info.value.message
