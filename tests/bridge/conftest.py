"""Fixtures for the bridge tests: the built library, and a raw bridge client on the stack."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "nomad_ctr" / "_bridge" / "libgobridge.so"


@pytest.fixture(scope="session")
def bridge():  # type: ignore[no-untyped-def]
    """nomad_ctr._bridge with the library loaded (built by `make gobridge`)."""
    from nomad_ctr import _bridge

    if not _bridge.library_path().exists():
        pytest.fail(f"{_bridge.library_path()} is missing: run `make gobridge` first", pytrace=False)
    _bridge.info()
    return _bridge


def go_binary() -> str | None:
    return os.environ.get("GO") or shutil.which("go") or (
        "/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None
    )


@pytest.fixture(scope="session")
def mismatched_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same bridge built with another package version baked in."""
    go = go_binary()
    if go is None:
        pytest.skip("needs the Go toolchain to build a mismatched library")
    out = tmp_path_factory.mktemp("mismatch") / "libgobridge.so"
    subprocess.run(
        [go, "build", "-buildmode=c-shared", "-trimpath",
         "-ldflags", "-X main.packageVersion=0.0.0-mismatch", "-o", str(out), "."],
        cwd=ROOT / "gobridge", env=dict(os.environ, CGO_ENABLED="1"), check=True,
        capture_output=True,
    )
    return out


class RawClient:
    """A bridge client handle plus its namespace, cleaned up after the module."""

    def __init__(self, bridge, address: str, namespace: str) -> None:  # type: ignore[no-untyped-def]
        self.bridge = bridge
        self.address = address
        self.namespace = namespace
        self.id = bridge.call("client.connect", {"address": address, "namespace": namespace})["client"]
        self.handle = bridge.Handle(self.id, "client")

    def call(self, method: str, request: dict | None = None, **kw):  # type: ignore[no-untyped-def]
        return self.bridge.call(method, {"client": self.id, **(request or {})}, **kw)

    def cleanup(self) -> None:
        for info in self.call("containers.list")["containers"]:
            with contextlib.suppress(Exception):
                self.call("containers.delete", {"id": info["id"], "force": True}, timeout=30)
        for img in self.call("images.list")["images"]:
            with contextlib.suppress(Exception):
                self.call("images.remove", {"ref": img["name"], "sync": True}, timeout=30)
        self.handle.close()
        # Namespaces are global; the bridge has no call for them, ctr does.
        subprocess.run(["ctr", "--address", self.address, "namespaces", "remove", self.namespace],
                       capture_output=True, timeout=30, check=False)

    def ctr(self, *args: str) -> str:
        """The real ctr CLI on the same namespace, for cross-checks."""
        proc = subprocess.run(["ctr", "--address", self.address, "-n", self.namespace, *args],
                              capture_output=True, text=True, timeout=60, check=True)
        return proc.stdout


@pytest.fixture(scope="module")
def raw_client(bridge, stack) -> Iterator[RawClient]:  # type: ignore[no-untyped-def]
    ns = f"gbtest-{uuid.uuid4().hex[:8]}"
    client = RawClient(bridge, stack.containerd_address, ns)
    try:
        yield client
    finally:
        client.cleanup()
