"""Fixtures for the Driver service tests on the real test stack (helpers: driverkit.py).

`plugin`   a DriverService behind a real gRPC server, configured for a fresh
           containerd namespace (emptied afterwards); `plugin.driver` is the stub.
`alloc`    Nomad-style alloc dirs with real log FIFOs drained by threads.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from driverkit import Alloc, LogPipe, Plugin, start_plugin

from nomad_ctr import Client, errors


@pytest.fixture(scope="module")
def namespace(request: pytest.FixtureRequest) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", Path(str(request.node.path)).stem.lower()).strip("-")
    return f"nctr-{stem[:40]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def ns_client(stack, namespace: str) -> Iterator[Client]:
    c = Client(address=stack.containerd_address, namespace=namespace, timeout=30.0)
    try:
        yield c
    finally:
        for container in c.containers.list():
            try:
                container.delete(force=True)
            except errors.ContainerdError:
                pass
        for image in c.images.list():
            try:
                c.images.remove(image.name)
            except errors.ContainerdError:
                pass
        c.close()
        subprocess.run(["ctr", "--address", stack.containerd_address, "namespaces", "remove", namespace],
                       capture_output=True, check=False, timeout=30)


@pytest.fixture
def plugin(stack, namespace: str, ns_client: Client, tmp_path: Path) -> Iterator[Plugin]:
    p = start_plugin(tmp_path, namespace, stack.containerd_address)
    try:
        yield p
    finally:
        p.destroy_all_and_close()


@pytest.fixture
def alloc(tmp_path: Path) -> Iterator[Callable[..., Alloc]]:
    made: list[Alloc] = []

    def make(task_name: str = "web") -> Alloc:
        alloc_id = str(uuid.uuid4())
        root = tmp_path / alloc_id
        for sub in ("alloc/logs", "alloc/data", "alloc/tmp", f"{task_name}/local", f"{task_name}/secrets",
                    f"{task_name}/tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_path, 0o755)
        out = LogPipe(root / "alloc" / "logs" / f".{task_name}.stdout.fifo")
        err = LogPipe(root / "alloc" / "logs" / f".{task_name}.stderr.fifo")
        a = Alloc(alloc_id, root, task_name, out, err)
        made.append(a)
        return a

    yield make
    for a in made:
        a.stdout.close()
        a.stderr.close()


