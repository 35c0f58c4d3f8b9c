"""The test stack is real: containerd answers, the registries serve, auth is on,
and every test image is pushed. If these fail, no other integration result
means anything."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request

from typing import Any

import pytest

# Not imported from conftest: with several conftest.py files (no packages),
# the module named "conftest" is whichever pytest loaded last.
Stack = Images = Any
IMAGE_NAMES = ("plain", "configured", "big", "private", "hello")

pytestmark = pytest.mark.integration

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _get(url: str, auth: tuple[str, str] | None = None, accept: str | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def _split(ref: str) -> tuple[str, str, str]:
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    return host, repo, tag


def test_containerd_answers_on_its_own_socket(stack: Stack) -> None:
    out = subprocess.run(
        ["ctr", "--address", stack.containerd_address, "--connect-timeout", "5s", "version"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "Server:" in out.stdout and "Version:" in out.stdout.split("Server:")[1]
    assert stack.containerd_address != "/run/containerd/containerd.sock", "must not be the system containerd"


def test_containerd_has_runc_v2_runtime(stack: Stack) -> None:
    out = subprocess.run(
        ["ctr", "--address", stack.containerd_address, "plugins", "ls"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("io.containerd.runtime.v2" in line and " ok" in line for line in lines)
    # CRI is disabled on purpose (it would want CNI config of its own).
    assert not any("io.containerd.grpc.v1.cri" in line and " ok" in line for line in lines)


def test_public_registry_serves_catalog(stack: Stack) -> None:
    status, body, _ = _get(f"http://{stack.registry}/v2/_catalog")
    assert status == 200
    repos = json.loads(body)["repositories"]
    assert "nomad-ctr/plain" in repos
    assert "nomad-ctr/private" not in repos, "the private image must live in the private registry only"


def test_public_registry_is_loopback_only(stack: Stack) -> None:
    assert stack.registry.startswith("127.") and stack.private_registry.startswith("127.")


def test_private_registry_refuses_anonymous(stack: Stack) -> None:
    status, _, headers = _get(f"http://{stack.private_registry}/v2/")
    assert status == 401
    assert headers.get("Www-Authenticate", "").startswith("Basic ")
    status, _, _ = _get(f"http://{stack.private_registry}/v2/nomad-ctr/private/manifests/latest", accept=MANIFEST_TYPES)
    assert status == 401


def test_private_registry_refuses_wrong_password(stack: Stack) -> None:
    status, _, _ = _get(f"http://{stack.private_registry}/v2/", auth=(stack.registry_user, stack.registry_password + "x"))
    assert status == 401


def test_private_registry_accepts_credentials(stack: Stack) -> None:
    status, _, _ = _get(f"http://{stack.private_registry}/v2/", auth=(stack.registry_user, stack.registry_password))
    assert status == 200


def test_password_not_in_stack_repr(stack: Stack) -> None:
    assert stack.registry_password not in repr(stack)


def test_images_fixture_lists_every_test_image(images: Images) -> None:
    assert sorted(images.all()) == sorted(IMAGE_NAMES)


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_image_manifest_is_pushed(stack: Stack, images: Images, name: str) -> None:
    ref = images.all()[name]
    host, repo, tag = _split(ref)
    auth = (stack.registry_user, stack.registry_password) if host == stack.private_registry else None
    status, body, headers = _get(f"http://{host}/v2/{repo}/manifests/{tag}", auth=auth, accept=MANIFEST_TYPES)
    assert status == 200, f"{ref}: registry answered {status}; run python3 tests/images/build.py"
    manifest = json.loads(body)
    assert manifest["schemaVersion"] == 2
    assert manifest["layers"], f"{ref} has no layers"
    assert headers.get("Docker-Content-Digest", "").startswith("sha256:")


def test_big_image_is_big_and_layered(stack: Stack, images: Images) -> None:
    host, repo, tag = _split(images.big)
    status, body, _ = _get(f"http://{host}/v2/{repo}/manifests/{tag}", accept=MANIFEST_TYPES)
    assert status == 200
    layers = json.loads(body)["layers"]
    assert len(layers) >= 4
    assert sum(layer["size"] for layer in layers) >= 45 * 1024 * 1024


def test_configured_image_config(stack: Stack, images: Images) -> None:
    host, repo, tag = _split(images.configured)
    status, body, _ = _get(f"http://{host}/v2/{repo}/manifests/{tag}", accept=MANIFEST_TYPES)
    assert status == 200
    digest = json.loads(body)["config"]["digest"]
    status, body, _ = _get(f"http://{host}/v2/{repo}/blobs/{digest}")
    assert status == 200
    cfg = json.loads(body)["config"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"]
    assert cfg["Cmd"] == ["echo configured"]
    assert cfg["WorkingDir"] == "/srv/app"
    assert "GREETING=hello" in cfg["Env"]
    assert cfg["User"] == "1000:1000"
