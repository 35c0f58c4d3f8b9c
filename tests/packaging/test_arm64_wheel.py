"""`make -f Makefile.arm64 wheel` (cross-built in a copy of the tree, shared with
tests/arm64) gives an aarch64 wheel that auditwheel turns into a manylinux_*_aarch64 one.
tests/arm64 checks the library inside it further (exports, glibc, qemu)."""

from __future__ import annotations

import re
from pathlib import Path

import elf64
import pytest
from buildkit import (
    arm64_plat,
    arm64_wheel,
    auditwheel,
    filename_tag,
    only,
    require_host_build,
    wheel_files,
    wheel_library,
    wheel_metadata_tags,
)

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def aarch64_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_host_build()  # auditwheel and patchelf; the cross toolchain is checked by the build
    return arm64_wheel(tmp_path_factory)


@pytest.fixture(scope="module")
def aarch64_repaired(aarch64_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse-arm64")
    # On an x86_64 host --plat accepts only x86_64 names; auto reads the wheel's arch.
    auditwheel("repair", "--plat", "auto", "-w", str(out), str(aarch64_wheel), cwd=out)
    return only(sorted(out.glob("*.whl")), "repaired arm64 wheel")


def test_is_tagged_aarch64_with_the_makefiles_plat(aarch64_wheel: Path) -> None:
    tag = f"py3-none-{arm64_plat()}"
    assert tag.endswith("_aarch64")
    assert filename_tag(aarch64_wheel) == tag
    assert wheel_metadata_tags(aarch64_wheel) == [tag]


def test_holds_an_aarch64_library(aarch64_wheel: Path) -> None:
    data = wheel_library(aarch64_wheel)
    assert elf64.header(data) == {"type": elf64.ET_DYN, "machine": elf64.EM_AARCH64}
    assert elf64.needed(data) == ["libc.so.6"]


def test_repair_gives_manylinux_aarch64_and_vendors_nothing(
    aarch64_wheel: Path, aarch64_repaired: Path
) -> None:
    library = wheel_library(aarch64_wheel)
    tags = filename_tag(aarch64_repaired).split("-")
    assert tags[:2] == ["py3", "none"]
    platforms = tags[2].split(".")
    glibcs = []
    for plat in platforms:
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_aarch64", plat)
        assert m, f"{plat} is not a manylinux_X_Y_aarch64 tag"
        glibcs.append((int(m.group(1)), int(m.group(2))))
    # The most compatible tag auditwheel found is the newest glibc the library needs.
    assert min(glibcs) == max(elf64.glibc_versions(library))
    assert sorted(wheel_metadata_tags(aarch64_repaired)) == sorted(
        f"py3-none-{p}" for p in platforms
    )
    assert wheel_files(aarch64_repaired) == wheel_files(aarch64_wheel), "files added or dropped"
    assert wheel_library(aarch64_repaired) == library, "auditwheel patched the library"
