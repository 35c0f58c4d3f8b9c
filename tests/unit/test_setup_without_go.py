"""setup.py without a Go toolchain: one clear message and a non-zero exit, no traceback.

The build step runs on a copy of setup.py in a temporary directory, so it could never
write the package's libgobridge.so, and with a PATH holding no go binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MESSAGE = (
    "error: building nomad_ctr needs the Go toolchain (go >= 1.26) with cgo and a C "
    "compiler. Install Go from https://go.dev/dl/ and put it on PATH (or set GO=/path/to/go)."
)
# setup.py's last resort when neither GO nor PATH names a go binary.
FALLBACK_GO = "/usr/local/go/bin/go"

# Runs setup.py as `python setup.py <command>` would, with the fallback location reported
# missing, as on a machine that never had Go installed there.
WITHOUT_FALLBACK = f"""
import os.path, runpy, sys
exists = os.path.exists
os.path.exists = lambda p: False if os.fspath(p) == {FALLBACK_GO!r} else exists(p)
sys.argv = ["setup.py", *sys.argv[1:]]
runpy.run_path("setup.py", run_name="__main__")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what setup.py reads (itself, pyproject.toml and the readme it names)."""
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tmp_path / name)
    (tmp_path / "bin").mkdir()  # the whole PATH: no go in it
    return tmp_path


def run_setup(project: Path, argv: list[str], go: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GO", "PATH")}
    env["PATH"] = str(project / "bin")
    if go is not None:
        env["GO"] = go
    return subprocess.run(
        [sys.executable, *argv], cwd=project, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def assert_one_clear_message(proc: subprocess.CompletedProcess[str], project: Path) -> None:
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [MESSAGE], proc.stderr
    assert proc.stderr.rstrip().endswith(MESSAGE), proc.stderr
    # Nothing was built into the copy either.
    assert not (project / "nomad_ctr").exists()


@pytest.mark.parametrize("command", ["build_go", "build_ext"])  # build_ext: the pip install path
def test_go_env_naming_a_missing_binary(project: Path, command: str) -> None:
    proc = run_setup(project, ["setup.py", command], go=str(project / "nowhere" / "go"))
    assert_one_clear_message(proc, project)


@pytest.mark.parametrize("command", ["build_go", "build_ext"])
def test_no_go_on_path_nor_in_the_usual_place(project: Path, command: str) -> None:
    proc = run_setup(project, ["-c", WITHOUT_FALLBACK, command], go=None)
    assert_one_clear_message(proc, project)
