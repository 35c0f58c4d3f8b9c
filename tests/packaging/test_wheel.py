"""The host wheel: built by pip from the sdist (setup.py's build_go compiles gobridge),
tagged py3-none-<platform>, repaired by auditwheel into a manylinux wheel with nothing
vendored, and usable from a fresh venv."""

from __future__ import annotations

import json
import platform
import re
import subprocess
from pathlib import Path

import elf64
import pytest
from buildkit import (
    MANYLINUX,
    STALE_LIBRARY,
    auditwheel,
    filename_tag,
    run,
    wheel_files,
    wheel_library,
    wheel_metadata_tags,
)

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]


def test_pip_builds_the_library_from_the_sdist(wheel_build: tuple[Path, str]) -> None:
    _, log = wheel_build
    assert "gobridge: " in log and "-buildmode=c-shared" in log, (
        f"setup.py's build_go did not run:\n{log[-3000:]}"
    )


def test_is_tagged_for_any_python_on_this_platform(wheel: Path) -> None:
    tag = f"py3-none-linux_{platform.machine()}"
    assert filename_tag(wheel) == tag
    assert wheel_metadata_tags(wheel) == [tag]


def test_holds_a_library_for_this_machine(wheel: Path) -> None:
    data = wheel_library(wheel)
    assert data != STALE_LIBRARY, "the wheel packed the tree's prebuilt library"
    machine = elf64.MACHINES[platform.machine()]
    assert elf64.header(data) == {"type": elf64.ET_DYN, "machine": machine}
    assert elf64.needed(data) == ["libc.so.6"]


def test_auditwheel_show_finds_the_manylinux_tag(wheel: Path) -> None:
    proc = auditwheel("show", str(wheel), cwd=wheel.parent)
    assert MANYLINUX in " ".join(proc.stdout.split()), proc.stdout


def test_repair_gives_manylinux_and_vendors_nothing(wheel: Path, repaired_wheel: Path) -> None:
    tag = f"py3-none-{MANYLINUX}"
    assert filename_tag(repaired_wheel) == tag
    assert wheel_metadata_tags(repaired_wheel) == [tag]
    assert wheel_files(repaired_wheel) == wheel_files(wheel), "auditwheel added or dropped files"
    assert wheel_library(repaired_wheel) == wheel_library(wheel), "auditwheel patched the library"


def test_fresh_venv_loads_the_library_from_the_wheel(
    venv: Path, source_tree: Path, tmp_path: Path
) -> None:
    # tomllib is 3.11+; the project supports 3.10. setup.py reads the version the same way.
    m = re.search(r'^version\s*=\s*"([^"]+)"', (source_tree / "pyproject.toml").read_text(), re.M)
    assert m, "pyproject.toml has no version"
    version = m.group(1)
    script = (
        "import json, nomad_ctr, nomad_ctr._bridge as b; "
        "print(json.dumps({'package': nomad_ctr.__file__, 'library': str(b.library_path()), "
        "'info': b.info()}))"
    )
    # -I: no PYTHONPATH, no user site, no cwd on sys.path; the source tree stays out of reach.
    proc = run([str(venv / "bin" / "python"), "-I", "-c", script], cwd=tmp_path, timeout=60)
    answer = json.loads(proc.stdout)
    site = venv.resolve()
    assert Path(answer["package"]).resolve().is_relative_to(site), answer["package"]
    assert Path(answer["library"]).resolve().is_relative_to(site), answer["library"]
    assert answer["info"]["version"] == version
    assert answer["info"]["abi"] == 1
    assert answer["info"]["go"].startswith("go1.")


def test_fresh_venv_has_consistent_requirements_and_the_cli(venv: Path, tmp_path: Path) -> None:
    run([str(venv / "bin" / "python"), "-m", "pip", "check"], cwd=tmp_path, timeout=60)
    proc = subprocess.run(
        [str(venv / "bin" / "nomad-ctr"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: nomad-ctr" in proc.stdout
    assert (venv / "bin" / "containerd-driver").exists()
