"""One build per session, shared by every packaging test: a copy of the tree -> sdist ->
wheel built from the sdist -> auditwheel-repaired wheel -> a fresh venv with it installed.
Each step is a session fixture, so a test asks only for the step it checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from buildkit import (
    MANYLINUX,
    STALE_LIBRARY,
    auditwheel,
    copy_tree,
    only,
    require_host_build,
    run,
)


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_host_build()
    tree = copy_tree(tmp_path_factory.mktemp("pkg-tree"))
    (tree / "nomad_ctr" / "_bridge" / "libgobridge.so").write_bytes(STALE_LIBRARY)
    return tree


@pytest.fixture(scope="session")
def sdist(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), "."], cwd=source_tree)
    return only(sorted(out.glob("*.tar.gz")), "sdist")


@pytest.fixture(scope="session")
def wheel_build(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(wheel, pip's verbose log): pip builds the sdist in an isolated environment, so
    build-system.requires must be complete and setup.py's build_go must run."""
    out = tmp_path_factory.mktemp("wheel")
    proc = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(sdist)],
        cwd=out,
    )
    return only(sorted(out.glob("*.whl")), "wheel"), proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def wheel(wheel_build: tuple[Path, str]) -> Path:
    return wheel_build[0]


@pytest.fixture(scope="session")
def repaired_wheel(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    auditwheel("repair", "--plat", MANYLINUX, "-w", str(out), str(wheel), cwd=out)
    return only(sorted(out.glob("*.whl")), "repaired wheel")


@pytest.fixture(scope="session")
def venv(repaired_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the repaired wheel and its
    dependencies (from the package index) installed."""
    path = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(path)], cwd=path)
    run([str(path / "bin" / "python"), "-m", "pip", "install", str(repaired_wheel)], cwd=path)
    return path
