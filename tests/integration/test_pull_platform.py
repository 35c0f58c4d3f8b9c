"""Pulls that name a platform get that platform or a clear NotFound, with nothing stored.

Uses the single-platform plain image and a two-platform image (an index over the host's
architecture and s390x) that this test builds and pushes to the public registry.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nomad_ctr import Client, errors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "images"))
import oci_layout as oci  # noqa: E402

pytestmark = pytest.mark.integration

HOST = oci.host_architecture()
OTHER = "s390x" if HOST != "s390x" else "amd64"


@pytest.fixture(scope="module")
def multi(stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """127.0.0.1:5000/nomad-ctr/multi:latest: linux/<host> and linux/<other>, each a
    one-file layer naming its platform; also each variant's layer diff id (the name of
    its unpacked snapshot: one layer, so the chain id is the diff id)."""
    variants, diff_ids = [], {}
    for arch in (HOST, OTHER):
        layer = oci.build_layer([oci.Entry(path="platform.txt", kind="file", data=f"linux/{arch}\n".encode())],
                                f"linux/{arch}")
        variants.append(oci.build_image([layer], oci.ImageConfig(cmd=["/platform.txt"]), architecture=arch))
        diff_ids[arch] = layer.diff_id
    layout = oci.write_index_layout(variants, tmp_path_factory.mktemp("multi-layout"))
    ref = f"{stack.registry}/nomad-ctr/multi:latest"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--all", "--preserve-digests",
                    "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{ref}"],
                   check=True, capture_output=True, timeout=120)
    return ref, diff_ids


def snapshots(ctr, namespace: str) -> list[str]:
    return [line.split()[0] for line in ctr(namespace, "snapshots", "ls").splitlines()[1:] if line.strip()]


def nothing_stored(client: Client, ctr, namespace: str) -> None:
    assert client.images.list() == []
    assert ctr(namespace, "leases", "ls", "-q").split() == []
    assert ctr(namespace, "content", "active").splitlines()[1:] == []


def test_lone_manifest_of_another_platform_is_not_found(client: Client, images, ctr, namespace: str) -> None:
    with pytest.raises(errors.NotFound) as info:
        client.images.pull(images.plain, platform=f"linux/{OTHER}", timeout=60)
    assert str(info.value) == f'image "{images.plain}" has no linux/{OTHER} variant (it has: linux/{HOST})'
    nothing_stored(client, ctr, namespace)
    img = client.images.pull(images.plain, platform=f"linux/{HOST}", timeout=60)
    assert img.name == images.plain
    client.images.remove(img.name, sync=True)


def test_index_pull_unpacks_the_named_platform(client: Client, multi, ctr, namespace: str) -> None:
    ref, diff_ids = multi
    for arch in (HOST, OTHER):
        img = client.images.pull(ref, platform=f"linux/{arch}", timeout=60)
        assert img.name == ref
        assert snapshots(ctr, namespace) == [diff_ids[arch]]  # that variant's layer, only
        client.images.remove(ref, sync=True)
    with pytest.raises(errors.NotFound) as info:
        client.images.pull(ref, platform="linux/riscv64", timeout=60)
    assert str(info.value) == f'image "{ref}" has no linux/riscv64 variant (it has: linux/{HOST}, linux/{OTHER})'
    nothing_stored(client, ctr, namespace)


@pytest.mark.parametrize("platform", ["linux", "linux//x", "Linux/AMD64 ", ""])
def test_malformed_platform_is_invalid(client: Client, images, platform: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        client.images.pull(images.plain, platform=platform, timeout=60)
    assert str(info.value).startswith("platform=")
