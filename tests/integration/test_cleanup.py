"""delete() leaves no task, container, snapshot or log behind (checked via the API and ctr)."""

from __future__ import annotations

import pytest

from nomad_ctr import Client, ContainerSpec, errors

pytestmark = pytest.mark.integration


def _snapshots(ctr, namespace: str) -> set[str]:
    lines = ctr(namespace, "snapshots", "ls").splitlines()[1:]
    return {line.split()[0] for line in lines if line.strip()}


def _ctr_ids(ctr, namespace: str, what: str) -> set[str]:
    lines = ctr(namespace, what, "ls", "-q").splitlines()
    return {line.strip() for line in lines if line.strip()}


@pytest.mark.parametrize("running", [False, True])
def test_delete_leaves_nothing(client: Client, plain: str, ctr, cid: str, running: bool) -> None:
    ns = client.namespace
    snaps_before = _snapshots(ctr, ns)
    c = client.containers.create(cid, plain, spec=ContainerSpec(args=["sleep", "600"] if running else ["true"]))
    c.start()
    if not running:
        c.wait(timeout=30)
    assert cid in _ctr_ids(ctr, ns, "containers")
    assert cid in _ctr_ids(ctr, ns, "tasks")
    assert _snapshots(ctr, ns) - snaps_before == {cid} or len(_snapshots(ctr, ns)) > len(snaps_before)
    logs = c.log_files.directory
    assert logs.exists()

    c.delete(force=running)

    assert cid not in [x.id for x in client.containers.list()]
    with pytest.raises(errors.ContainerNotFound):
        client.containers.get(cid)
    with pytest.raises(errors.ContainerNotFound):
        c.status()
    assert cid not in _ctr_ids(ctr, ns, "containers")
    assert cid not in _ctr_ids(ctr, ns, "tasks")
    assert _snapshots(ctr, ns) == snaps_before
    assert not logs.exists()


def test_context_manager_cleans_up_after_error(client: Client, plain: str, ctr, cid: str) -> None:
    snaps_before = _snapshots(ctr, client.namespace)
    with pytest.raises(RuntimeError):
        with client.containers.create(cid, plain, spec=ContainerSpec(args=["sleep", "600"])) as c:
            c.start()
            raise RuntimeError("boom")
    assert cid not in _ctr_ids(ctr, client.namespace, "containers")
    assert _snapshots(ctr, client.namespace) == snaps_before


def test_failed_start_leaves_no_task(client: Client, plain: str, ctr, cid: str) -> None:
    with client.containers.create(cid, plain, spec=ContainerSpec(args=["/no/such/binary"])) as c:
        with pytest.raises(errors.ContainerdError):
            c.start()
        assert cid not in _ctr_ids(ctr, client.namespace, "tasks")
    assert cid not in _ctr_ids(ctr, client.namespace, "containers")


def test_delete_twice(client: Client, plain: str, cid: str) -> None:
    c = client.containers.create(cid, plain, spec=ContainerSpec(args=["true"]))
    c.delete()
    with pytest.raises(errors.ContainerNotFound):
        c.delete()


def test_client_close(stack, namespace: str) -> None:
    c = Client(address=stack.containerd_address, namespace=namespace)
    view = c.with_namespace(namespace + "-view")
    assert c.version().version and c.is_serving()
    c.close()
    c.close()  # idempotent
    assert c.closed and view.closed
    with pytest.raises(errors.FailedPrecondition):
        c.version()
    with pytest.raises(errors.FailedPrecondition):
        c.with_namespace(namespace + "-late")


def test_namespace_view_shares_the_connection(stack, namespace: str, plain: str, ctr) -> None:
    from nomad_ctr import _bridge

    def clients() -> int:
        return int(_bridge.call("debug.handles", {}).get("client", 0))

    other = namespace + "-shared"
    with Client(address=stack.containerd_address, namespace=namespace) as c:
        before = clients()
        view = c.with_namespace(other)
        assert clients() == before, "a view opens no connection of its own"
        try:
            # Calls through the view land in its namespace, the root's stay in the root's.
            assert view.images.pull(plain, timeout=120).name == plain
            assert plain in ctr(other, "images", "ls", "-q").split()
            with view.containers.create("shared-view", plain, spec=ContainerSpec(args=["true"])):
                assert "shared-view" in ctr(other, "containers", "ls", "-q").split()
                assert "shared-view" not in [x.id for x in c.containers.list()]
                with pytest.raises(errors.ContainerNotFound):
                    c.containers.get("shared-view")
            view.close()  # ends the view only
            assert view.closed and not c.closed and c.is_serving()
            with pytest.raises(errors.FailedPrecondition):
                view.version()
        finally:
            again = c.with_namespace(other)  # a closed view is replaced
            again.images.remove(plain, sync=True)
    ctr(other, "namespaces", "remove", other, check=False)


def test_from_env(stack, monkeypatch) -> None:
    monkeypatch.setenv("CONTAINERD_ADDRESS", stack.containerd_address)
    monkeypatch.setenv("CONTAINERD_NAMESPACE", "nctr-from-env")
    with Client.from_env() as c:
        assert c.namespace == "nctr-from-env" and c.address == stack.containerd_address
        assert c.is_serving()


def test_connect_to_missing_socket_is_unavailable(tmp_path) -> None:
    with pytest.raises(errors.Unavailable):
        Client(address=str(tmp_path / "none.sock"), timeout=2)
