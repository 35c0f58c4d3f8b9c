"""Fixtures for API tests on the real test stack (tests/conftest.py: `stack`, `images`).

`client`  a nomad_ctr.Client in a fresh containerd namespace per test module; afterwards
          every container, image and snapshot in it is removed and the namespace deleted.
`plain`, `configured`  refs of those test images, pulled once into the module's namespace.
`ctr`     runs the real `ctr` CLI against the test containerd (for cross-checks).
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nomad_ctr import Client, errors

Ctr = Callable[..., str]


@pytest.fixture(scope="module")
def namespace(request: pytest.FixtureRequest) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", Path(str(request.node.path)).stem.lower()).strip("-")
    return f"nctr-{stem[:40]}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def ctr(stack) -> Ctr:
    def run(namespace: str, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["ctr", "--address", stack.containerd_address, "-n", namespace, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    return run


@pytest.fixture(scope="module")
def client(stack, namespace: str, ctr: Ctr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    state = tmp_path_factory.mktemp("nomad-ctr-state")
    c = Client(address=stack.containerd_address, namespace=namespace, timeout=30.0, state_dir=state)
    try:
        yield c
    finally:
        _empty_namespace(c)
        c.close()
        _remove_namespace(ctr, namespace)


def _empty_namespace(c: Client) -> None:
    for container in c.containers.list():
        try:
            container.delete(force=True)
        except errors.NotFound:
            pass
    for image in c.images.list():
        try:
            c.images.remove(image.name, sync=True)
        except errors.NotFound:
            pass


def _remove_namespace(ctr: Ctr, namespace: str) -> None:
    # Leases a failed pull may leave (see test_images) would keep content alive; the
    # snapshotter removes unpacked layers shortly after the images go, so retry a while.
    leases = ctr(namespace, "leases", "ls", "-q", check=False).split()
    if leases:
        ctr(namespace, "leases", "rm", "--sync", *leases, check=False)
    deadline = time.monotonic() + 30
    while namespace in ctr(namespace, "namespaces", "ls", "-q").split():
        ctr(namespace, "namespaces", "remove", namespace, check=False)
        if time.monotonic() > deadline:
            raise AssertionError(f"namespace {namespace} still not empty after the tests")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def plain(client: Client, images) -> str:
    return client.images.pull(images.plain, timeout=120).name


@pytest.fixture(scope="module")
def configured(client: Client, images) -> str:
    return client.images.pull(images.configured, timeout=120).name


@pytest.fixture
def cid(request: pytest.FixtureRequest) -> str:
    """A container id unique to the test."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"{name[:50]}-{uuid.uuid4().hex[:6]}"
