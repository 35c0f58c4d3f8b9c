"""The arm64 cross build: `make -f Makefile.arm64 gobridge` (in a copy of the tree, so
the host's nomad_ctr/_bridge/libgobridge.so is never overwritten) must produce an
aarch64 ELF shared object that exports the gobridge ABI, needs no glibc newer than
the wheel tag claims, and loads and answers gb_version under qemu-aarch64.

The build takes ~2.5 min cold on a 2-core machine (Go's cache makes rebuilds fast);
the artifact is cached under $NOMAD_CTR_ARM64_CACHE (default ~/.cache/nomad-ctr/arm64),
keyed on a hash of the gobridge sources and the two Makefiles.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import nomad_ctr

pytestmark = pytest.mark.arm64

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ABI_SYMBOLS = (
    "gb_version",
    "gb_call",
    "gb_op_new",
    "gb_op_cancel",
    "gb_op_poll",
    "gb_release",
    "gb_free",
)
SYSROOT = "/usr/aarch64-linux-gnu"
CROSS_CC = "aarch64-linux-gnu-gcc"
EM_AARCH64 = 183
ET_DYN = 3


def _plat() -> str:
    text = (REPO / "Makefile.arm64").read_text()
    m = re.search(r"^PLAT\s*:?=\s*(\S+)", text, re.MULTILINE)
    assert m, "Makefile.arm64 sets no PLAT"
    return m.group(1)


def _qemu() -> str | None:
    return shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")


def _toolchain() -> None:
    if shutil.which(CROSS_CC) and _qemu() and Path(SYSROOT, "include", "stdio.h").exists():
        return
    proc = subprocess.run(
        ["bash", str(HERE / "provision.sh")], check=False, capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(
            f"arm64 cross toolchain missing and not installable here: {proc.stderr.strip()[-300:]}"
        )


def _source_key() -> str:
    h = hashlib.sha256()
    files = sorted(
        p for p in (REPO / "gobridge").rglob("*") if p.is_file() and not p.name.endswith("_test.go")
    )
    for path in [*files, REPO / "Makefile", REPO / "Makefile.arm64", REPO / "pyproject.toml"]:
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class Build:
    lib: Path
    seconds: float  # how long the build took when it was made
    cached: bool


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info", "build", "dist")
    for name in ("gobridge", "nomad_ctr"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in ("Makefile", "Makefile.arm64", "pyproject.toml", "setup.py"):
        shutil.copy2(REPO / name, dest / name)


@pytest.fixture(scope="module")
def arm64_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    _toolchain()
    cache = (
        Path(
            os.environ.get("NOMAD_CTR_ARM64_CACHE", Path.home() / ".cache" / "nomad-ctr" / "arm64")
        )
        / _source_key()
    )
    lib, timing = cache / "libgobridge.so", cache / "build-seconds"
    if lib.exists() and timing.exists():
        return Build(lib, float(timing.read_text()), cached=True)
    tree = tmp_path_factory.mktemp("arm64-tree")
    _copy_tree(tree)
    start = time.monotonic()
    proc = subprocess.run(
        ["make", "-f", "Makefile.arm64", "gobridge"],
        cwd=tree,
        check=False,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - start
    assert proc.returncode == 0, f"arm64 build failed:\n{proc.stdout}\n{proc.stderr}"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tree / "nomad_ctr" / "_bridge" / "libgobridge.so", lib)
    timing.write_text(f"{seconds:.1f}\n")
    return Build(lib, seconds, cached=False)


# ---- a minimal ELF64 little-endian reader ------------------------------------------------------


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    offset: int
    size: int
    link: int
    entsize: int


def _elf(data: bytes) -> tuple[dict[str, int], list[Section]]:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[4] == 2, "not ELFCLASS64"
    assert data[5] == 1, "not little-endian"
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    e_shoff = struct.unpack_from("<Q", data, 40)[0]
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 58)
    raw = []
    for i in range(e_shnum):
        name, typ, _flags, _addr, off, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, e_shoff + i * e_shentsize
        )
        raw.append((name, typ, off, size, link, entsize))
    shstr_off = raw[e_shstrndx][2]

    def cstr(base: int, idx: int) -> str:
        end = data.index(b"\0", base + idx)
        return data[base + idx : end].decode()

    sections = [Section(cstr(shstr_off, n), t, o, s, lk, es) for n, t, o, s, lk, es in raw]
    return {"type": e_type, "machine": e_machine}, sections


def _dynamic_symbols(data: bytes) -> dict[str, tuple[int, int, int]]:
    """name -> (binding, type, section index) from .dynsym."""
    _, sections = _elf(data)
    dynsym = next(s for s in sections if s.type == 11)  # SHT_DYNSYM
    strtab = sections[dynsym.link]
    out = {}
    for off in range(dynsym.offset, dynsym.offset + dynsym.size, dynsym.entsize):
        st_name, st_info, _other, st_shndx, _value, _size = struct.unpack_from("<IBBHQQ", data, off)
        if st_name:
            end = data.index(b"\0", strtab.offset + st_name)
            out[data[strtab.offset + st_name : end].decode()] = (
                st_info >> 4,
                st_info & 0xF,
                st_shndx,
            )
    return out


# ---- the checks -----------------------------------------------------------------------------


def test_build_time_is_recorded(arm64_build: Build) -> None:
    print(
        f"\narm64 gobridge build: {arm64_build.seconds:.1f}s ({'cached' if arm64_build.cached else 'fresh'})"
    )
    assert arm64_build.seconds > 0


def test_is_an_aarch64_shared_object(arm64_build: Build) -> None:
    header, _ = _elf(arm64_build.lib.read_bytes())
    assert header == {"type": ET_DYN, "machine": EM_AARCH64}


def test_exports_the_gobridge_abi(arm64_build: Build) -> None:
    symbols = _dynamic_symbols(arm64_build.lib.read_bytes())
    for name in ABI_SYMBOLS:
        assert name in symbols, f"{name} not exported"
        binding, kind, shndx = symbols[name]
        assert (binding, kind) == (1, 2), (
            f"{name}: binding {binding}, type {kind} (want GLOBAL FUNC)"
        )
        assert shndx != 0, f"{name} is undefined"


def test_needs_no_newer_glibc_than_the_wheel_tag_claims(arm64_build: Build) -> None:
    data = arm64_build.lib.read_bytes()
    _, sections = _elf(data)
    dynstr = next(s for s in sections if s.name == ".dynstr")
    versions = {
        tuple(int(x) for x in m.group(1).split(b"."))
        for m in re.finditer(
            rb"GLIBC_([0-9]+\.[0-9]+)", data[dynstr.offset : dynstr.offset + dynstr.size]
        )
    }
    assert versions, "no GLIBC version references: not a glibc build?"
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_aarch64", _plat())
    assert m, f"PLAT {_plat()!r} is not a manylinux_X_Y_aarch64 tag"
    assert max(versions) <= (int(m.group(1)), int(m.group(2)))


def test_loads_and_answers_gb_version_under_qemu(arm64_build: Build, tmp_path: Path) -> None:
    caller = tmp_path / "caller"
    subprocess.run(
        [CROSS_CC, "-O2", "-Wall", "-Werror", "-o", str(caller), str(HERE / "caller.c"), "-ldl"],
        check=True,
    )
    assert _elf(caller.read_bytes())[0]["machine"] == EM_AARCH64
    qemu = _qemu()
    assert qemu is not None
    proc = subprocess.run(
        [qemu, "-L", SYSROOT, str(caller), str(arm64_build.lib)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["version"] == nomad_ctr.__version__
    assert answer["abi"] == 1
    assert answer["go"].startswith("go1.")
