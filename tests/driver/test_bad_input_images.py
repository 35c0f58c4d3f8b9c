"""Undecodable task input is INVALID_ARGUMENT naming the field, with nothing left in
containerd (each option's bad values: test_bad_input_options.py); image pulls: local
reuse, auth scoping, recoverable vs. fatal pull errors."""

from __future__ import annotations

import grpc
import msgpack
import pytest
from driverkit import Plugin, task_config
from grpc_status import rpc_status

from nomad_ctr import Client
from nomad_ctr._pb import driver_pb2, recoverable_error_pb2

pytestmark = pytest.mark.driver


def recoverable(exc: grpc.RpcError) -> bool | None:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is None or not status.details:
        return None
    detail = recoverable_error_pb2.RecoverableError()
    status.details[0].Unpack(detail)
    return detail.recoverable


def start_error(plugin: Plugin, task: driver_pb2.TaskConfig) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        plugin.start(task)
    return exc.value


BAD = [
    (b"\xc1", "config"),  # not msgpack
    (msgpack.packb({"image": 5}), "image"),
    (msgpack.packb({"image": "x", "bogus": "y"}), "bogus"),
    (task_config(image=""), "image"),
    (task_config(image="Not A Ref"), "image"),
    (task_config(image="busybox", image_pull_timeout="5 minutes"), "image_pull_timeout"),
    (msgpack.packb({"image": "busybox", "args": "not-a-list"}), "args"),
]


@pytest.mark.parametrize("config,field", BAD, ids=[f for _, f in BAD])
def test_bad_task_config(plugin: Plugin, alloc, ns_client: Client, config: bytes, field: str) -> None:
    before = {c.id for c in ns_client.containers.list()}
    a = alloc()
    err = start_error(plugin, a.task(config))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.details(), err.details()
    assert recoverable(err) is None  # not retried by Nomad
    assert {c.id for c in ns_client.containers.list()} == before
    assert plugin.service.store.all() == []
    # still serving
    assert plugin.driver.Capabilities(driver_pb2.CapabilitiesRequest()).capabilities.exec


def test_privileged_gate(stack, namespace, ns_client, tmp_path, alloc, images) -> None:
    from driverkit import start_plugin

    p = start_plugin(tmp_path, namespace, stack.containerd_address, allow_privileged=False)
    try:
        err = start_error(p, alloc().task(task_config(image=images.plain, privileged=True)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "Running privileged jobs are not allowed"
        assert recoverable(err) is None  # not retried: the operator said no
    finally:
        p.close()


def test_missing_image_is_fatal(plugin: Plugin, alloc, stack) -> None:
    ref = f"{stack.registry}/nomad-ctr/does-not-exist:v1"
    err = start_error(plugin, alloc().task(task_config(image=ref)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "does-not-exist" in err.details()
    assert recoverable(err) is False


def test_unreachable_registry_is_recoverable(plugin: Plugin, alloc) -> None:
    err = start_error(plugin, alloc().task(task_config(image="127.0.0.1:1/nomad-ctr/plain:v1",
                                                        image_pull_timeout="20s")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert recoverable(err) is True
    assert "127.0.0.1:1" in err.details()


def test_private_registry_auth(plugin: Plugin, alloc, images, stack) -> None:
    err = start_error(plugin, alloc().task(task_config(image=images.private, command="true")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert recoverable(err) is False
    assert err.details().startswith(f"pull access denied for {images.private}: "), err.details()
    assert stack.registry_password not in err.details()
    wrong = task_config(image=images.private, command="true",
                        auth={"username": stack.registry_user, "password": "wrong-" + stack.registry_password})
    err = start_error(plugin, alloc().task(wrong))
    assert "pull access denied" in err.details()
    assert stack.registry_password not in err.details()
    good = task_config(image=images.private, command="sh", args=["-c", "exit 4"],
                       auth={"username": stack.registry_user, "password": stack.registry_password})
    a = alloc()
    task = a.task(good)
    plugin.start(task)
    assert plugin.wait(task.id).result.exit_code == 4


def test_local_image_reused_for_pinned_tags(plugin: Plugin, alloc, images, ns_client: Client) -> None:
    # a tag other than latest that exists only locally: no pull needed
    src = ns_client.images.pull(images.plain, timeout=60)
    local = "127.0.0.1:9/nomad-ctr/local-only:v1"  # nothing listens on port 9
    import subprocess

    subprocess.run(["ctr", "--address", ns_client.address, "-n", ns_client.namespace, "images", "tag",
                    src.name, local], check=True, capture_output=True)
    a = alloc()
    task = a.task(task_config(image=local, command="sh", args=["-c", "exit 11"]))
    plugin.start(task)
    assert plugin.wait(task.id).result.exit_code == 11


def test_failed_start_rolls_back(plugin: Plugin, alloc, images, ns_client: Client) -> None:
    a = alloc()
    task = a.task(task_config(image=images.plain, command="/no/such/binary"))
    err = start_error(plugin, task)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "/no/such/binary" in err.details()
    ours = [c.id for c in ns_client.containers.list()
            if c.labels.get("com.hashicorp.nomad.alloc_id") == a.alloc_id]
    assert ours == []
    assert not (a.alloc_dir / "web" / "containerd-driver-etc").exists()
    assert plugin.service.store.all() == []
    # the same task (same container id) starts fine afterwards
    ok = a.task(task_config(image=images.plain, command="true"))
    plugin.start(ok)
    assert plugin.wait(ok.id).result.exit_code == 0


def test_containerd_down_is_recoverable(stack, namespace, tmp_path, alloc, images) -> None:
    from driverkit import start_plugin

    p = start_plugin(tmp_path, namespace, "/run/nomad-ctr-test/no-such.sock")  # SetConfig still works
    try:
        err = start_error(p, alloc().task(task_config(image=images.plain, command="true")))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert recoverable(err) is True
    finally:
        p.close()


def test_disabled_driver(stack, namespace, tmp_path, alloc, images) -> None:
    from driverkit import start_plugin

    p = start_plugin(tmp_path, namespace, stack.containerd_address, enabled=False)
    try:
        fp = p.driver.Fingerprint(driver_pb2.FingerprintRequest(), timeout=30)
        first = next(fp)
        fp.cancel()
        assert first.health == driver_pb2.FingerprintResponse.UNHEALTHY
        assert "enabled = false" in first.health_description
        err = start_error(p, alloc().task(task_config(image=images.plain, command="true")))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        p.close()
