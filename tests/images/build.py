#!/usr/bin/env python3
"""Build the test images from busybox-static and push them to the test registries.

Hermetic: no internet, no docker. Layers are made with tarfile (oci_layout.py),
written as OCI image layouts and pushed with `skopeo copy`. An image whose
manifest the registry already holds with the same digest is not pushed again.

    python3 tests/images/build.py            # build + push all (reads the stack env)
    python3 tests/images/build.py --no-push  # only write the layouts
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oci_layout import (  # noqa: E402
    DEFAULT_PATH,
    MEDIA_MANIFEST,
    Entry,
    Image,
    ImageConfig,
    Layer,
    build_image,
    build_layer,
    write_layout,
)

BUSYBOX = Path("/bin/busybox")
ENV_FILE = Path("/run/nomad-ctr-test/env")
DEFAULT_OUT = Path("/var/lib/nomad-ctr-test/image-layouts")
REPO_PREFIX = "nomad-ctr"
APP_UID = 1000

# Applets the tests rely on; the build fails if busybox lacks one.
REQUIRED_APPLETS = (
    "sh echo cat sleep ls pwd hostname id env touch mkdir kill yes head dd wc grep seq "
    "nc httpd stat top ps true false printf test tail"
).split()

BIG_LAYERS = 5
BIG_LAYER_BYTES = 10 * 1024 * 1024  # 5 x 10 MiB of incompressible data ~ 52 MB

# PID 1 gets no default SIGTERM action, so the loop traps it to stop at once with exit 0;
# sleeping in the background keeps the shell free to run the trap mid-sleep
HELLO_SCRIPT = (
    "trap 'echo \"hello: stopping on SIGTERM\"; exit 0' TERM; "
    "while true; do echo 'hello from nomad-ctr'; sleep 3 & wait $!; done"
)


# --- layers ----------------------------------------------------------------


def is_static_elf(data: bytes) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP (dynamic loader)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def applet_paths(busybox: Path) -> list[str]:
    """Install paths of every applet ("bin/sh", "usr/bin/wget", ...)."""
    out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True)
    return sorted(p for p in out.stdout.split() if "/" in p)


def base_entries(busybox_bin: bytes, applets: list[str]) -> list[Entry]:
    names = {p.rsplit("/", 1)[1] for p in applets}
    missing = [a for a in REQUIRED_APPLETS if a not in names]
    if missing:
        raise ValueError(f"busybox lacks required applets: {missing}")
    dirs = {"bin", "dev", "etc", "home", "proc", "sbin", "srv", "sys", "usr", "usr/bin", "usr/sbin", "var"}
    entries = [Entry(d, "dir") for d in sorted(dirs)]
    entries += [
        Entry("root", "dir", mode=0o700),
        Entry("tmp", "dir", mode=0o1777),
        Entry("home/app", "dir", uid=APP_UID, gid=APP_UID),
        Entry("bin/busybox", "file", data=busybox_bin),
        Entry(
            "etc/passwd", "file", mode=0o644,
            data=(
                "root:x:0:0:root:/root:/bin/sh\n"
                f"app:x:{APP_UID}:{APP_UID}:app:/home/app:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
            ).encode(),
        ),
        Entry(
            "etc/group", "file", mode=0o644,
            data=f"root:x:0:\napp:x:{APP_UID}:\nnogroup:x:65534:\n".encode(),
        ),
    ]
    entries += [Entry(p, "symlink", mode=0o777, target="/bin/busybox") for p in applets if p != "bin/busybox"]
    return entries


def random_layer_entries(index: int, size: int) -> list[Entry]:
    # shake_256 is a fixed function: the same seed gives the same bytes on any
    # machine and Python version, so the big image's digest is stable.
    data = hashlib.shake_256(f"nomad-ctr-big-layer-{index}".encode()).digest(size)
    return [Entry("data", "dir"), Entry(f"data/blob-{index}.bin", "file", mode=0o644, data=data)]


# --- the catalogue ---------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str  # repository below REPO_PREFIX
    private: bool
    image: Image


def catalogue(busybox: Path = BUSYBOX, big: bool = True) -> list[Target]:
    data = busybox.read_bytes()
    if not is_static_elf(data):
        raise SystemExit(f"{busybox} is not a static 64-bit ELF: install busybox-static (scripts/provision.sh)")
    base = build_layer(base_entries(data, applet_paths(busybox)), "busybox-static and applet links")
    app_dir = build_layer(
        [Entry("srv", "dir"), Entry("srv/app", "dir", uid=APP_UID, gid=APP_UID)], "WORKDIR /srv/app"
    )
    plain = build_image([base], ImageConfig(cmd=["sh"]))
    targets = [
        Target("plain", False, plain),
        Target(
            "configured", False,
            build_image(
                [base, app_dir],
                ImageConfig(
                    entrypoint=["/bin/sh", "-c"],
                    cmd=["echo configured"],
                    working_dir="/srv/app",
                    env=[DEFAULT_PATH, "GREETING=hello"],
                    user=f"{APP_UID}:{APP_UID}",
                ),
            ),
        ),
        Target("private", True, plain),
        Target("hello", False, build_image([base], ImageConfig(cmd=["/bin/sh", "-c", HELLO_SCRIPT]))),
    ]
    if big:
        layers: list[Layer] = [base]
        for i in range(BIG_LAYERS):
            # Level 1: random data does not compress anyway; spare the CPU.
            layers.append(build_layer(random_layer_entries(i, BIG_LAYER_BYTES), f"random data {i}", compresslevel=1))
        targets.append(Target("big", False, build_image(layers, ImageConfig(cmd=["sh"]))))
    return targets


# --- registry --------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    public: str
    private: str
    user: str
    password: str


def load_env(env_file: Path = ENV_FILE) -> dict[str, str]:
    """The stack's env file (`export K=V` lines), overridden by the process env."""
    values: dict[str, str] = {}
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            line = line.strip().removeprefix("export ").strip()
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                values[key] = value.strip("'\"")
    for key in list(values) + ["NOMAD_CTR_REGISTRY", "NOMAD_CTR_PRIVATE_REGISTRY",
                               "NOMAD_CTR_REGISTRY_USER", "NOMAD_CTR_REGISTRY_PASSWORD"]:
        if os.environ.get(key):
            values[key] = os.environ[key]
    return values


def registry_from_env(env: dict[str, str]) -> Registry:
    missing = [k for k in ("NOMAD_CTR_REGISTRY", "NOMAD_CTR_PRIVATE_REGISTRY",
                           "NOMAD_CTR_REGISTRY_USER", "NOMAD_CTR_REGISTRY_PASSWORD") if not env.get(k)]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run scripts/stack.sh up (or set them)")
    return Registry(env["NOMAD_CTR_REGISTRY"], env["NOMAD_CTR_PRIVATE_REGISTRY"],
                    env["NOMAD_CTR_REGISTRY_USER"], env["NOMAD_CTR_REGISTRY_PASSWORD"])


def remote_digest(host: str, repo: str, tag: str, creds: tuple[str, str] | None) -> str | None:
    """Digest of repo:tag in the registry at host, or None if it has no such tag."""
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", method="HEAD")
    req.add_header("Accept", MEDIA_MANIFEST)
    if creds:
        token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise SystemExit(f"registry {host} answered {err.code} for {repo}:{tag}") from None


def push(layout: Path, host: str, repo: str, tag: str, creds: tuple[str, str] | None) -> None:
    cmd = [
        "skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests",
        "--dest-tls-verify=false", f"oci:{layout}:{tag}", f"docker://{host}/{repo}:{tag}",
    ]
    with tempfile.TemporaryDirectory(prefix="nomad-ctr-push-") as tmp:
        if creds:
            # An auth file (mode 0600, deleted after) keeps the password out of
            # argv, where `ps` would show it.
            authfile = Path(tmp) / "auth.json"
            token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"auths": {host: {"auth": token}}}, f)
            cmd[3:3] = ["--dest-authfile", str(authfile)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        if creds:
            out = out.replace(creds[1], "***")
        raise SystemExit(f"skopeo copy to {host}/{repo}:{tag} failed ({proc.returncode}): {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the OCI layouts go (default %(default)s)")
    ap.add_argument("--no-push", action="store_true", help="write the layouts only")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="build only these images")
    ap.add_argument("--env-file", type=Path, default=ENV_FILE)
    args = ap.parse_args(argv)

    started = time.monotonic()
    targets = catalogue(big=not args.only or "big" in args.only)
    if args.only:
        unknown = set(args.only) - {t.name for t in targets}
        if unknown:
            ap.error(f"--only: unknown image(s) {sorted(unknown)}")
        targets = [t for t in targets if t.name in args.only]
    registry = None if args.no_push else registry_from_env(load_env(args.env_file))
    print(f"built {len(targets)} image(s) in {time.monotonic() - started:.1f}s", flush=True)

    for t in targets:
        layout = write_layout(t.image, args.out / t.name)
        repo = f"{REPO_PREFIX}/{t.name}"
        if registry is None:
            print(f"  {t.name:<11} {t.image.digest}  layout {layout}", flush=True)
            continue
        host = registry.private if t.private else registry.public
        creds = (registry.user, registry.password) if t.private else None
        ref = f"{host}/{repo}:latest"
        if remote_digest(host, repo, "latest", creds) == t.image.digest:
            print(f"  {ref:<45} {t.image.digest}  up to date", flush=True)
            continue
        t0 = time.monotonic()
        push(layout, host, repo, "latest", creds)
        got = remote_digest(host, repo, "latest", creds)
        if got != t.image.digest:
            raise SystemExit(f"{ref}: registry reports {got} after the push, expected {t.image.digest}")
        print(f"  {ref:<45} {t.image.digest}  pushed in {time.monotonic() - t0:.1f}s", flush=True)
    print(f"images done in {time.monotonic() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
