"""Run gobridge's Go unit tests from pytest, so the one test command covers them too."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import go_binary

pytestmark = pytest.mark.unit

GOBRIDGE = Path(__file__).resolve().parents[2] / "gobridge"


def test_go_vet_and_unit_tests_pass() -> None:
    go = go_binary()
    if go is None:
        pytest.skip("no Go toolchain (GO, PATH or /usr/local/go/bin/go)")
    env = dict(os.environ, CGO_ENABLED="1")
    for cmd in ([go, "vet", "."], [go, "test", "-count=1", "."]):
        proc = subprocess.run(cmd, cwd=GOBRIDGE, env=env, capture_output=True, text=True,
                              timeout=600, check=False)
        assert proc.returncode == 0, f"{' '.join(cmd[1:])} failed:\n{proc.stdout}\n{proc.stderr}"
