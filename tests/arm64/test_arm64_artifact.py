"""The arm64 cross build: `make -f Makefile.arm64 wheel` (in a copy of the tree, so the
host's nomad_ctr/_bridge/libgobridge.so is never overwritten) must ship an aarch64 ELF
shared object that exports the gobridge ABI, needs no glibc newer than the wheel tag
claims, and loads and answers gb_version under qemu-aarch64.

The wheel is built once per session and shared with tests/packaging (which checks its tags
and auditwheel repair); see tests/packaging/buildkit.py for the cache. A missing cross
toolchain skips these tests, or fails them under NOMAD_CTR_REQUIRE_STACK=1 (CI).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nomad_ctr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packaging"))
import elf64  # noqa: E402
from buildkit import CROSS_CC, SYSROOT, arm64_plat, arm64_wheel, qemu, wheel_library  # noqa: E402

pytestmark = [pytest.mark.arm64, pytest.mark.timeout(900)]

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


@pytest.fixture(scope="module")
def arm64_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The library from the arm64 wheel, as pip would install it."""
    lib = tmp_path_factory.mktemp("arm64-lib") / "libgobridge.so"
    lib.write_bytes(wheel_library(arm64_wheel(tmp_path_factory)))
    return lib


# ---- the checks -----------------------------------------------------------------------------


def test_is_an_aarch64_shared_object(arm64_lib: Path) -> None:
    header = elf64.header(arm64_lib.read_bytes())
    assert header == {"type": elf64.ET_DYN, "machine": elf64.EM_AARCH64}


def test_exports_the_gobridge_abi(arm64_lib: Path) -> None:
    symbols = elf64.dynamic_symbols(arm64_lib.read_bytes())
    for name in ABI_SYMBOLS:
        assert name in symbols, f"{name} not exported"
        binding, kind, shndx = symbols[name]
        assert (binding, kind) == (elf64.STB_GLOBAL, elf64.STT_FUNC), (
            f"{name}: binding {binding}, type {kind} (want GLOBAL FUNC)"
        )
        assert shndx != 0, f"{name} is undefined"


def test_needs_no_newer_glibc_than_the_wheel_tag_claims(arm64_lib: Path) -> None:
    versions = elf64.glibc_versions(arm64_lib.read_bytes())
    assert versions, "no GLIBC version references: not a glibc build?"
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_aarch64", arm64_plat())
    assert m, f"PLAT {arm64_plat()!r} is not a manylinux_X_Y_aarch64 tag"
    assert max(versions) <= (int(m.group(1)), int(m.group(2)))


def test_loads_and_answers_gb_version_under_qemu(arm64_lib: Path, tmp_path: Path) -> None:
    caller = tmp_path / "caller"
    subprocess.run(
        [CROSS_CC, "-O2", "-Wall", "-Werror", "-o", str(caller), str(HERE / "caller.c"), "-ldl"],
        check=True,
    )
    assert elf64.header(caller.read_bytes())["machine"] == elf64.EM_AARCH64
    emulator = qemu()
    assert emulator is not None
    proc = subprocess.run(
        [emulator, "-L", SYSROOT, str(caller), str(arm64_lib)],
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
