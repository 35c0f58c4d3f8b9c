"""Pulling from the real test registries: public, private, errors, timeouts, progress."""

from __future__ import annotations

import threading

import pytest

from nomad_ctr import Auth, Client, PullProgress, errors

pytestmark = pytest.mark.integration


def test_pull_public_get_list_remove(client: Client, images) -> None:
    seen: list[tuple[int, PullProgress]] = []
    img = client.images.pull(images.plain, timeout=120,
                             progress=lambda p: seen.append((threading.get_ident(), p)))
    assert img.name == images.plain
    assert img.digest.startswith("sha256:") and img.size > 0
    assert img.config.cmd == ("sh",)
    # progress: called in this thread, ends with a done snapshot
    assert seen, "progress callback never called"
    assert {ident for ident, _ in seen} == {threading.get_ident()}
    last = seen[-1][1]
    assert last.done and last.fraction == 1.0

    got = client.images.get(images.plain)
    assert got.digest == img.digest
    assert images.plain in [i.name for i in client.images.list()]

    client.images.remove(images.plain, sync=True)
    with pytest.raises(errors.ImageNotFound):
        client.images.get(images.plain)
    assert not client.images.exists(images.plain)


def test_pull_normalises_short_refs(client: Client, images) -> None:
    short = images.plain.removesuffix(":latest")
    img = client.images.pull(short, timeout=120)
    assert img.name == images.plain


def test_pull_private_with_credentials(client: Client, stack, images) -> None:
    auth = Auth(stack.registry_user, stack.registry_password)
    img = client.images.pull(images.private, auth=auth, timeout=120)
    assert img.name == images.private and img.config.cmd == ("sh",)


def test_pull_private_scoped_credentials(client: Client, stack, images) -> None:
    auth = Auth(stack.registry_user, stack.registry_password, registry=stack.private_registry)
    assert client.images.pull(images.private, auth=auth, timeout=120).name == images.private


@pytest.mark.parametrize("password", ["wrong-password-123", None])
def test_pull_private_bad_or_missing_credentials(client: Client, stack, images, password) -> None:
    auth = None if password is None else Auth(stack.registry_user, password)
    with pytest.raises(errors.Unauthenticated) as info:
        client.images.pull(images.private, auth=auth, timeout=60)
    err = info.value
    for text in (str(err), repr(err), repr(err.args)):
        assert stack.registry_password not in text
        if password:
            assert password not in text
    assert "authoriz" in str(err).lower() or "401" in str(err), str(err)


def test_credentials_not_sent_to_other_hosts(client: Client, stack, images) -> None:
    # Scoped to the public registry, the credentials must not go to the private one.
    auth = Auth(stack.registry_user, stack.registry_password, registry=stack.registry)
    with pytest.raises(errors.Unauthenticated):
        client.images.pull(images.private, auth=auth, timeout=60)


def test_pull_missing_image(client: Client, stack) -> None:
    with pytest.raises(errors.ImageNotFound) as info:
        client.images.pull(f"{stack.registry}/nomad-ctr/does-not-exist:latest", timeout=60)
    assert isinstance(info.value, errors.NotFound)


def test_pull_missing_tag(client: Client, images) -> None:
    with pytest.raises(errors.ImageNotFound):
        client.images.pull(images.plain.replace(":latest", ":no-such-tag"), timeout=60)


@pytest.mark.parametrize("ref", ["Upper/Case", "a//b", "x:bad tag", ""])
def test_pull_malformed_ref(client: Client, ref: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        client.images.pull(ref)
    assert str(info.value).startswith("ref=")


def test_pull_timeout_on_big_image(client: Client, images) -> None:
    with pytest.raises(errors.Timeout) as info:
        client.images.pull(images.big, timeout=0.05)
    assert isinstance(info.value, TimeoutError)


def test_progress_callback_error_cancels_pull(client: Client, images) -> None:
    class Stop(Exception):
        pass

    def progress(p: PullProgress) -> None:
        raise Stop

    with pytest.raises(Stop):
        client.images.pull(images.big, progress=progress, timeout=120)


def test_get_missing_image(client: Client, stack) -> None:
    with pytest.raises(errors.ImageNotFound):
        client.images.get(f"{stack.registry}/nomad-ctr/never-pulled:latest")


def test_pull_progress_reports_layers(client: Client, images) -> None:
    snaps: list[PullProgress] = []
    img = client.images.pull(images.big, timeout=300, progress=snaps.append)
    assert img.size > 40_000_000
    final = snaps[-1]
    assert final.done and len(final.layers) >= 2
    assert final.total >= img.size * 0.9 or final.layers_done == len(final.layers)
    assert all(0.0 <= s.fraction <= 1.0 for s in snaps)
    assert [s.done for s in snaps].count(True) == 1


def _leftovers(ctr, namespace: str) -> dict[str, list[str]]:
    """What a pull can leave in a namespace: leases, active ingests, blobs, snapshots."""
    def rows(*args: str) -> list[str]:
        return [line.split()[0] for line in ctr(namespace, *args).splitlines()[1:] if line.strip()]

    return {
        "leases": ctr(namespace, "leases", "ls", "-q").split(),
        "active": rows("content", "active"),
        "content": ctr(namespace, "content", "ls", "-q").split(),
        "snapshots": rows("snapshots", "ls"),
    }


@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_failed_pull_leaves_nothing(client: Client, images, ctr, how: str) -> None:
    """A pull that times out or is cancelled leaves no lease, ingest, blob or snapshot
    (in a namespace of its own, so nothing else there holds content)."""
    ns = f"{client.namespace}-{how}"
    view = client.with_namespace(ns)

    class Stop(Exception):
        pass

    def progress(p: PullProgress) -> None:
        if not p.done:
            raise Stop

    try:
        if how == "timeout":
            with pytest.raises(errors.Timeout):
                view.images.pull(images.big, timeout=0.05)
        else:
            with pytest.raises(Stop):
                view.images.pull(images.big, timeout=120, progress=progress)
        assert _leftovers(ctr, ns) == {"leases": [], "active": [], "content": [], "snapshots": []}
    finally:
        ctr(ns, "namespaces", "remove", ns, check=False)
