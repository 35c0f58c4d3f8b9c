"""Build OCI image layouts from plain Python data, byte for byte reproducibly.

Pure logic: no registry, no network, no root. The same inputs always give the
same layer, config and manifest digests, which is what lets build.py skip a
push when the registry already holds that exact manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

# Fixed timestamp for every file and for the config: reproducible digests.
EPOCH = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Entry:
    """One file, directory or symlink inside a layer."""

    path: str  # relative, no leading slash: "bin/sh"
    kind: str  # "file" | "dir" | "symlink"
    mode: int = 0o755
    data: bytes = b""
    target: str = ""  # symlink target
    uid: int = 0
    gid: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("file", "dir", "symlink"):
            raise ValueError(f"Entry.kind must be file, dir or symlink, got {self.kind!r}")
        if self.path.startswith("/") or not self.path or ".." in self.path.split("/"):
            raise ValueError(f"Entry.path must be relative and inside the root, got {self.path!r}")
        if self.kind == "symlink" and not self.target:
            raise ValueError(f"Entry.target is required for symlink {self.path!r}")


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self, annotations: dict[str, str] | None = None) -> dict:
        d: dict = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if annotations:
            d["annotations"] = annotations
        return d


@dataclass(frozen=True)
class Layer:
    blob: Blob  # gzip-compressed tar
    diff_id: str  # sha256 of the uncompressed tar
    comment: str


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an image config (the OCI `config` object)."""

    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] = field(default_factory=lambda: [DEFAULT_PATH])
    working_dir: str = ""
    user: str = ""

    def to_json(self) -> dict:
        out: dict = {"Env": list(self.env)}
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.user:
            out["User"] = self.user
        return out


@dataclass(frozen=True)
class Image:
    config: Blob
    manifest: Blob
    layers: tuple[Layer, ...]

    @property
    def digest(self) -> str:
        """The manifest digest: what a registry reports for the pushed tag."""
        return self.manifest.digest


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def host_architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def _tarinfo(e: Entry) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(e.path)
    ti.mtime = EPOCH
    ti.mode = e.mode
    ti.uid, ti.gid = e.uid, e.gid
    ti.uname = ti.gname = ""
    if e.kind == "dir":
        ti.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        ti.type = tarfile.SYMTYPE
        ti.linkname = e.target
    else:
        ti.size = len(e.data)
    return ti


def build_tar(entries: list[Entry]) -> bytes:
    """An uncompressed tar of `entries`, sorted by path, parents listed first."""
    paths = [e.path for e in entries]
    dupes = {p for p in paths if paths.count(p) > 1}
    if dupes:
        raise ValueError(f"duplicate paths in layer: {sorted(dupes)}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in sorted(entries, key=lambda e: e.path.split("/")):
            tar.addfile(_tarinfo(e), io.BytesIO(e.data) if e.kind == "file" else None)
    return buf.getvalue()


def build_layer(entries: list[Entry], comment: str, compresslevel: int = 6) -> Layer:
    raw = build_tar(entries)
    out = io.BytesIO()
    # mtime=0 and no file name in the gzip header: reproducible bytes.
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0, compresslevel=compresslevel) as gz:
        gz.write(raw)
    return Layer(
        blob=Blob(MEDIA_LAYER_GZIP, out.getvalue()),
        diff_id="sha256:" + hashlib.sha256(raw).hexdigest(),
        comment=comment,
    )


def build_image(layers: list[Layer], config: ImageConfig, architecture: str | None = None) -> Image:
    if not layers:
        raise ValueError("an image needs at least one layer")
    config_json = {
        "architecture": architecture or host_architecture(),
        "os": "linux",
        "created": CREATED,
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": CREATED, "created_by": "tests/images/build.py", "comment": layer.comment}
            for layer in layers
        ],
    }
    config_blob = Blob(MEDIA_CONFIG, canonical_json(config_json))
    manifest_json = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.blob.descriptor() for layer in layers],
    }
    manifest_blob = Blob(MEDIA_MANIFEST, canonical_json(manifest_json))
    return Image(config=config_blob, manifest=manifest_blob, layers=tuple(layers))


def write_layout(image: Image, directory: Path, tag: str = "latest") -> Path:
    """Write `image` as an OCI image layout (oci-layout, index.json, blobs/)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for blob in (image.config, image.manifest, *(layer.blob for layer in image.layers)):
        path = blobs / blob.digest.removeprefix("sha256:")
        if not path.exists() or path.stat().st_size != len(blob.data):
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(blob.data)
            tmp.replace(path)
    (directory / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [image.manifest.descriptor({REF_NAME_ANNOTATION: tag})],
    }
    (directory / "index.json").write_bytes(canonical_json(index))
    return directory


def write_index_layout(images: list[Image], directory: Path, tag: str = "latest") -> Path:
    """Write a multi-platform image: an image index over `images` (each one's platform
    read from its config), tagged `tag`, as an OCI image layout."""
    for image in images:
        write_layout(image, directory)
    manifests = []
    for image in images:
        cfg = json.loads(image.config.data)
        manifests.append({**image.manifest.descriptor(),
                          "platform": {"os": cfg["os"], "architecture": cfg["architecture"]}})
    index_blob = Blob(MEDIA_INDEX, canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                                                   "manifests": manifests}))
    (directory / "blobs" / "sha256" / index_blob.digest.removeprefix("sha256:")).write_bytes(index_blob.data)
    top = {"schemaVersion": 2, "mediaType": MEDIA_INDEX,
           "manifests": [index_blob.descriptor({REF_NAME_ANNOTATION: tag})]}
    (directory / "index.json").write_bytes(canonical_json(top))
    return directory
