"""Unit tests of the hermetic image builder: digests, tar contents, config
fields and the layout on disk. No registry, no root."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import struct
import sys
import tarfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import oci_layout as oci  # noqa: E402

# build.py has a generic name (PyPI has a `build` package): load it by path.
_spec = importlib.util.spec_from_file_location("nomad_ctr_test_images_build", HERE / "build.py")
assert _spec and _spec.loader
build = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = build  # dataclasses look their module up there
_spec.loader.exec_module(build)

pytestmark = pytest.mark.unit

needs_busybox = pytest.mark.skipif(not build.BUSYBOX.exists(), reason="no /bin/busybox (scripts/provision.sh)")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sample_entries() -> list[oci.Entry]:
    return [
        oci.Entry("bin/sh", "symlink", mode=0o777, target="/bin/busybox"),
        oci.Entry("bin", "dir"),
        oci.Entry("bin/busybox", "file", data=b"\x7fELF fake"),
        oci.Entry("tmp", "dir", mode=0o1777),
        oci.Entry("home/app", "dir", uid=1000, gid=1000),
        oci.Entry("home", "dir"),
    ]


def test_blob_digest_is_sha256_of_bytes() -> None:
    blob = oci.Blob(oci.MEDIA_CONFIG, b"{}")
    assert blob.digest == sha(b"{}")
    assert blob.descriptor() == {"mediaType": oci.MEDIA_CONFIG, "digest": sha(b"{}"), "size": 2}


def test_layer_is_reproducible_and_diff_id_is_of_uncompressed_tar() -> None:
    a = oci.build_layer(sample_entries(), "x")
    b = oci.build_layer(list(reversed(sample_entries())), "x")
    assert a.blob.digest == b.blob.digest
    raw = gzip.decompress(a.blob.data)
    assert a.diff_id == sha(raw)
    assert a.blob.digest == sha(a.blob.data)
    assert a.blob.media_type == oci.MEDIA_LAYER_GZIP


def test_layer_changes_when_content_changes() -> None:
    a = oci.build_layer(sample_entries(), "x")
    changed = sample_entries()[:-1] + [oci.Entry("home", "dir", mode=0o700)]
    assert oci.build_layer(changed, "x").diff_id != a.diff_id


def test_tar_lists_parents_first_with_fixed_metadata() -> None:
    raw = oci.build_tar(sample_entries())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == ["bin", "bin/busybox", "bin/sh", "home", "home/app", "tmp"]
        by_name = {m.name: m for m in members}
        assert all(m.mtime == oci.EPOCH for m in members)
        assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "/bin/busybox"
        assert by_name["tmp"].mode == 0o1777
        assert (by_name["home/app"].uid, by_name["home/app"].gid) == (1000, 1000)
        f = tar.extractfile("bin/busybox")
        assert f is not None and f.read() == b"\x7fELF fake"


def test_tar_rejects_duplicate_paths() -> None:
    with pytest.raises(ValueError, match="duplicate paths.*'bin'"):
        oci.build_tar([oci.Entry("bin", "dir"), oci.Entry("bin", "dir")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "/bin", "kind": "dir"}, "Entry.path.*'/bin'"),
        ({"path": "a/../../etc", "kind": "dir"}, "Entry.path.*'a/../../etc'"),
        ({"path": "x", "kind": "fifo"}, "Entry.kind.*'fifo'"),
        ({"path": "bin/sh", "kind": "symlink"}, "Entry.target.*'bin/sh'"),
    ],
)
def test_entry_rejects_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        oci.Entry(**kwargs)


def test_image_config_and_manifest_fields() -> None:
    l1 = oci.build_layer(sample_entries(), "base")
    l2 = oci.build_layer([oci.Entry("srv", "dir")], "app")
    image = oci.build_image(
        [l1, l2],
        oci.ImageConfig(entrypoint=["/bin/sh", "-c"], cmd=["echo hi"], working_dir="/srv",
                        env=[oci.DEFAULT_PATH, "A=b"], user="1000:1000"),
        architecture="amd64",
    )
    cfg = json.loads(image.config.data)
    assert cfg["architecture"] == "amd64" and cfg["os"] == "linux"
    assert cfg["config"] == {
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "WorkingDir": "/srv",
        "Env": [oci.DEFAULT_PATH, "A=b"], "User": "1000:1000",
    }
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": [l1.diff_id, l2.diff_id]}
    assert [h["comment"] for h in cfg["history"]] == ["base", "app"]

    manifest = json.loads(image.manifest.data)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == oci.MEDIA_MANIFEST
    assert manifest["config"] == {"mediaType": oci.MEDIA_CONFIG, "digest": sha(image.config.data),
                                  "size": len(image.config.data)}
    assert [x["digest"] for x in manifest["layers"]] == [l1.blob.digest, l2.blob.digest]
    assert [x["size"] for x in manifest["layers"]] == [len(l1.blob.data), len(l2.blob.data)]
    assert image.digest == sha(image.manifest.data)


def test_unset_config_fields_are_omitted() -> None:
    image = oci.build_image([oci.build_layer(sample_entries(), "b")], oci.ImageConfig(cmd=["sh"]))
    assert json.loads(image.config.data)["config"] == {"Env": [oci.DEFAULT_PATH], "Cmd": ["sh"]}


def test_image_needs_a_layer() -> None:
    with pytest.raises(ValueError, match="at least one layer"):
        oci.build_image([], oci.ImageConfig())


def test_write_layout(tmp_path: Path) -> None:
    image = oci.build_image([oci.build_layer(sample_entries(), "b")], oci.ImageConfig(cmd=["sh"]))
    oci.write_layout(image, tmp_path, tag="v1")
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "index.json").read_text())
    (desc,) = index["manifests"]
    assert desc["digest"] == image.digest
    assert desc["annotations"] == {oci.REF_NAME_ANNOTATION: "v1"}
    blobs = sorted((tmp_path / "blobs" / "sha256").iterdir())
    assert len(blobs) == 3  # config, manifest, one layer
    for path in blobs:
        assert sha(path.read_bytes()) == "sha256:" + path.name
    # Rewriting is a no-op that keeps the same files.
    oci.write_layout(image, tmp_path, tag="v1")
    assert sorted((tmp_path / "blobs" / "sha256").iterdir()) == blobs


def _elf(with_interp: bool) -> bytes:
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)  # e_phoff
    struct.pack_into("<HH", header, 0x36, 56, 2)  # e_phentsize, e_phnum
    phdrs = bytearray(112)
    struct.pack_into("<I", phdrs, 0, 1)  # PT_LOAD
    struct.pack_into("<I", phdrs, 56, 3 if with_interp else 1)
    return bytes(header + phdrs)


def test_static_elf_detection() -> None:
    assert build.is_static_elf(_elf(with_interp=False))
    assert not build.is_static_elf(_elf(with_interp=True))
    assert not build.is_static_elf(b"#!/bin/sh\n" + bytes(100))


def test_base_layer_requires_the_applets_tests_use() -> None:
    with pytest.raises(ValueError, match="lacks required applets.*'nc'"):
        build.base_entries(b"bin", ["bin/sh", "bin/echo"])


def test_random_layer_is_deterministic_and_incompressible() -> None:
    a = build.random_layer_entries(3, 64 * 1024)
    assert a == build.random_layer_entries(3, 64 * 1024)
    assert a[1].data != build.random_layer_entries(4, 64 * 1024)[1].data
    assert len(gzip.compress(a[1].data)) > 0.99 * len(a[1].data)


def test_load_env_reads_export_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("NOMAD_CTR_REGISTRY", "NOMAD_CTR_PRIVATE_REGISTRY", "NOMAD_CTR_REGISTRY_USER",
                "NOMAD_CTR_REGISTRY_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    env = tmp_path / "env"
    env.write_text("export NOMAD_CTR_REGISTRY=127.0.0.1:5000\n# c\nNOMAD_CTR_REGISTRY_USER='u'\n")
    assert build.load_env(env) == {"NOMAD_CTR_REGISTRY": "127.0.0.1:5000", "NOMAD_CTR_REGISTRY_USER": "u"}
    with pytest.raises(SystemExit, match="NOMAD_CTR_PRIVATE_REGISTRY"):
        build.registry_from_env(build.load_env(env))


@needs_busybox
def test_catalogue_matches_the_team_notes() -> None:
    targets = {t.name: t for t in build.catalogue(big=False)}
    assert set(targets) == {"plain", "configured", "private", "hello"}

    def config(name: str) -> dict:
        return json.loads(targets[name].image.config.data)["config"]

    assert config("plain")["Cmd"] == ["sh"]
    assert config("configured") == {
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo configured"], "WorkingDir": "/srv/app",
        "Env": [oci.DEFAULT_PATH, "GREETING=hello"], "User": "1000:1000",
    }
    assert "hello from nomad-ctr" in " ".join(config("hello")["Cmd"])
    assert targets["private"].private and not targets["plain"].private
    assert targets["private"].image.digest == targets["plain"].image.digest
    # Built twice, byte for byte the same: what makes skip-if-pushed work.
    again = {t.name: t.image.digest for t in build.catalogue(big=False)}
    assert again == {n: t.image.digest for n, t in targets.items()}


@needs_busybox
def test_base_layer_has_busybox_users_and_tmp() -> None:
    (plain,) = [t for t in build.catalogue(big=False) if t.name == "plain"]
    raw = gzip.decompress(plain.image.layers[0].blob.data)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        names = set(tar.getnames())
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
        assert tar.getmember("tmp").mode == 0o1777
    assert {"bin/busybox", "bin/sh", "etc/group", "usr/bin/nc"} <= names
    assert passwd.startswith("root:x:0:0:") and ":1000:1000:" in passwd
