"""Registry options of a task: where credentials go (task auth wins over the plugin's,
and they only go to the image's own registry host) and image_pull_timeout firing.
A FakeRegistry on 127.0.0.x records the headers of every request the pull makes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from driverkit import Plugin, start_plugin, task_config
from fakeregistry import FakeRegistry, synthetic_image
from test_bad_input_images import recoverable, start_error

pytestmark = pytest.mark.driver

DRIVER_AUTH = {"username": "plugin-user", "password": "plugin-secret-1"}
TASK_AUTH = {"username": "task-user", "password": "task-secret-2"}


def basic(cred: dict[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{cred['username']}:{cred['password']}".encode()).decode()


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    reg = FakeRegistry()
    yield reg
    reg.close()


@pytest.fixture
def authed_plugin(stack, namespace: str, ns_client, tmp_path: Path) -> Iterator[Plugin]:
    """A plugin whose agent config carries default registry credentials."""
    p = start_plugin(tmp_path, namespace, stack.containerd_address, auth=DRIVER_AUTH)
    try:
        yield p
    finally:
        p.destroy_all_and_close()


def test_plugin_credentials_not_sent_to_a_registry_that_does_not_ask(
    authed_plugin: Plugin, alloc, fake: FakeRegistry, stack
) -> None:
    # the public registry (behind a recording proxy) never challenges: no Authorization
    fake.forward(stack.registry)
    a = alloc()
    task = a.task(task_config(image=f"{fake.address}/nomad-ctr/plain:latest", command="sh",
                              args=["-c", "exit 3"]))
    authed_plugin.start(task)
    assert authed_plugin.wait(task.id).result.exit_code == 3
    assert any("/manifests/" in r.path for r in fake.requests), fake.requests
    assert fake.authorizations() == []


def test_task_auth_wins_over_plugin_auth(authed_plugin: Plugin, alloc, fake: FakeRegistry) -> None:
    fake.challenge('Basic realm="fake"')
    task = alloc().task(task_config(image=f"{fake.address}/nomad-ctr/x:v1", auth=TASK_AUTH))
    err = start_error(authed_plugin, task)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and recoverable(err) is False
    sent = fake.authorizations()
    assert sent and set(sent) == {basic(TASK_AUTH)}
    for secret in (TASK_AUTH["password"], DRIVER_AUTH["password"]):
        assert secret not in err.details()


def test_plugin_auth_used_without_task_auth(authed_plugin: Plugin, alloc, fake: FakeRegistry) -> None:
    fake.challenge('Basic realm="fake"')
    err = start_error(authed_plugin, alloc().task(task_config(image=f"{fake.address}/nomad-ctr/x:v1")))
    assert "pull access denied" in err.details()
    assert set(fake.authorizations()) == {basic(DRIVER_AUTH)}
    assert DRIVER_AUTH["password"] not in err.details()


@pytest.fixture
def pinned_plugin(stack, namespace: str, tmp_path: Path, fake: FakeRegistry, request) -> Iterator[Plugin]:
    """A plugin whose default credentials are pinned (auth.registry) to the host the test names."""
    registry = fake.address if request.param == "fake" else request.param
    p = start_plugin(tmp_path, namespace, stack.containerd_address, auth={**DRIVER_AUTH, "registry": registry})
    try:
        yield p
    finally:
        p.close()


@pytest.mark.parametrize("pinned_plugin", ["registry.example.com:5000"], indirect=True)
def test_pinned_plugin_auth_is_not_offered_to_another_registry(
    pinned_plugin: Plugin, alloc, fake: FakeRegistry
) -> None:
    # a job names a registry of its own that asks for credentials: it gets none
    fake.challenge('Basic realm="fake"')
    err = start_error(pinned_plugin, alloc().task(task_config(image=f"{fake.address}/nomad-ctr/x:v1")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and recoverable(err) is False
    assert "pull access denied" in err.details()
    assert fake.requests and fake.authorizations() == []
    assert DRIVER_AUTH["password"] not in err.details()


@pytest.mark.parametrize("pinned_plugin", ["fake"], indirect=True)
def test_pinned_plugin_auth_goes_to_its_registry(pinned_plugin: Plugin, alloc, fake: FakeRegistry) -> None:
    fake.challenge('Basic realm="fake"')
    start_error(pinned_plugin, alloc().task(task_config(image=f"{fake.address}/nomad-ctr/x:v1")))
    assert set(fake.authorizations()) == {basic(DRIVER_AUTH)}


def test_credentials_not_sent_to_another_host_on_redirect(
    authed_plugin: Plugin, alloc, fake: FakeRegistry
) -> None:
    # the image's registry wants credentials, then sends blob downloads to another
    # host (127.0.0.2, as object-storage backed registries do): that host sees none
    image = synthetic_image()
    storage = FakeRegistry("127.0.0.2").serve(image)
    try:
        fake.guard(image, redirect_blobs_to=storage.address)
        a = alloc()
        task = a.task(task_config(image=f"{fake.address}/nomad-ctr/fresh:v1", auth=TASK_AUTH))
        err = start_error(authed_plugin, task)
        # pulled; the image has no program, so only the start fails
        assert "random.bin" in err.details() and "pull" not in err.details(), err.details()
        assert set(fake.authorizations()) == {basic(TASK_AUTH)}
        assert {r.path.rsplit("/", 1)[1] for r in storage.requests if "/blobs/" in r.path} == set(image[1])
        assert storage.authorizations() == []
    finally:
        storage.close()


def test_image_pull_timeout_fires(plugin: Plugin, alloc, fake: FakeRegistry) -> None:
    fake.hang()  # a registry that accepts the request and never answers
    ref = f"{fake.address}/nomad-ctr/plain:v1"
    err = start_error(plugin, alloc().task(task_config(image=ref, image_pull_timeout="2s")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert recoverable(err) is True  # a slow registry may recover; Nomad retries
    assert err.details() == f"pulling image {ref} timed out after 2s (image_pull_timeout)"
    assert fake.requests  # it did try
