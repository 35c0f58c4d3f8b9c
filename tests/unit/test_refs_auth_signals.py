"""Reference normalisation, Auth redaction and host scoping, signal parsing."""

from __future__ import annotations

import signal

import pytest

from nomad_ctr import Auth, errors
from nomad_ctr.auth import redact
from nomad_ctr.refs import normalize_ref, parse_ref, registry_host
from nomad_ctr.signals import parse_signal

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("someone/tool", "docker.io/someone/tool:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("127.0.0.1:5000/nomad-ctr/plain", "127.0.0.1:5000/nomad-ctr/plain:latest"),
        ("127.0.0.1:5000/nomad-ctr/plain:v1", "127.0.0.1:5000/nomad-ctr/plain:v1"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/a/b/c", "localhost:5000/a/b/c:latest"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
        (f"ghcr.io/o/r:t@{DIGEST}", f"ghcr.io/o/r:t@{DIGEST}"),
        ("[::1]:5000/x", "[::1]:5000/x:latest"),
    ],
)
def test_normalize(ref: str, expected: str) -> None:
    assert normalize_ref(ref) == expected
    assert normalize_ref(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "ref",
    ["", " busybox", "BusyBox", "busybox:", "busybox:-tag", "a//b", "busybox@sha256:xyz",
     "127.0.0.1:5000/", "host:port:x/y", "x/Y:latest", "a" * 300, "UPPER.io/x/Y", "ba d"],
)
def test_malformed_refs_raise_invalid_argument(ref: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        normalize_ref(ref)
    assert str(info.value).startswith("ref=")


def test_ref_field_name_is_configurable() -> None:
    with pytest.raises(errors.InvalidArgument, match="^image='Bad'"):
        normalize_ref("Bad", field="image")


def test_parse_ref_parts() -> None:
    r = parse_ref("127.0.0.1:5001/nomad-ctr/private:latest")
    assert (r.registry, r.path, r.tag, r.digest) == ("127.0.0.1:5001", "nomad-ctr/private", "latest", None)


@pytest.mark.parametrize(
    ("ref", "host"),
    [("busybox", "registry-1.docker.io"), ("127.0.0.1:5001/x", "127.0.0.1:5001"),
     ("Registry.Example.com/x", "registry.example.com")],
)
def test_registry_host(ref: str, host: str) -> None:
    assert registry_host(ref) == host


def test_auth_repr_redacts_password() -> None:
    auth = Auth("nomadctr", "s3cret-pw")
    for text in (repr(auth), str(auth), f"{auth}", repr([auth]), repr({"a": auth})):
        assert "s3cret-pw" not in text
        assert "nomadctr" in text


def test_auth_host_scoping() -> None:
    unscoped = Auth("u", "p")
    assert unscoped.applies_to("127.0.0.1:5001/x")
    scoped = Auth("u", "p", registry="127.0.0.1:5001")
    assert scoped.applies_to("127.0.0.1:5001/nomad-ctr/private")
    assert not scoped.applies_to("127.0.0.1:5000/nomad-ctr/private")
    assert not scoped.applies_to("busybox")
    hub = Auth("u", "p", registry="https://index.docker.io/")
    assert hub.applies_to("busybox") and not hub.applies_to("ghcr.io/x")


def test_auth_rejects_bad_values_without_echoing_secret() -> None:
    with pytest.raises(errors.InvalidArgument, match="^auth.username="):
        Auth("", "pw")
    with pytest.raises(errors.InvalidArgument) as info:
        Auth("u", 12345)  # type: ignore[arg-type]
    assert "12345" not in str(info.value)


def test_redact() -> None:
    assert redact("bad password hunter2 for u", "hunter2", None, "") == "bad password *** for u"


@pytest.mark.parametrize(
    ("sig", "number"),
    [("SIGTERM", 15), ("TERM", 15), ("term", 15), ("sigkill", 9), (9, 9), ("10", 10),
     (signal.SIGINT, 2), ("SIGRTMIN", signal.SIGRTMIN), ("SIGRTMIN+2", signal.SIGRTMIN + 2),
     ("SIGRTMAX-1", signal.SIGRTMAX - 1)],
)
def test_parse_signal(sig, number: int) -> None:
    assert parse_signal(sig) == number


@pytest.mark.parametrize("sig", ["SIGNOPE", "", 0, 65, -1, True, 1.5, None, "SIGRTMAX+1"])
def test_parse_signal_rejects(sig) -> None:
    with pytest.raises(errors.InvalidArgument, match="^signal="):
        parse_signal(sig)
