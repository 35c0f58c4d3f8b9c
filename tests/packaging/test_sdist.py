"""The sdist (`python -m build --sdist`) ships the Go module, so it builds from source, and
never a prebuilt library (MANIFEST.in)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]


def _members(sdist: Path) -> list[str]:
    """Paths inside the sdist without its top directory (nomad_ctr-<version>/)."""
    with tarfile.open(sdist) as tf:
        return [m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile() and "/" in m.name]


def test_holds_the_go_module(sdist: Path, source_tree: Path) -> None:
    names = set(_members(sdist))
    sources = {
        p.relative_to(source_tree).as_posix()
        for p in (source_tree / "gobridge").glob("*.go")
        if not p.name.endswith("_test.go")
    }
    assert sources, "the tree has no gobridge/*.go"
    assert sources <= names, f"gobridge sources missing from the sdist: {sorted(sources - names)}"
    for name in ("gobridge/go.mod", "gobridge/go.sum", "gobridge/gobridge.h"):
        assert name in names, f"{name} missing from the sdist"


def test_leaves_out_go_tests_and_every_shared_object(sdist: Path, source_tree: Path) -> None:
    # The copy does hold Go tests and a (stale) libgobridge.so: MANIFEST.in must drop them.
    assert list((source_tree / "gobridge").glob("*_test.go"))
    assert (source_tree / "nomad_ctr" / "_bridge" / "libgobridge.so").exists()
    names = _members(sdist)
    assert not [n for n in names if n.endswith("_test.go")]
    assert not [n for n in names if n.endswith(".so") or ".so." in n]
