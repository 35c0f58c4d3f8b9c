"""Run the harness's own Go tests (hclspec -> hcldec conversion, cty msgpack bytes,
job/agent file reading, logmon FIFOs, the host sequence against a tiny go-plugin
driver) so pytest reports them with everything else."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HARNESS_DIR = Path(__file__).resolve().parent


@pytest.mark.unit
def test_go_unit_tests_pass() -> None:
    env = dict(os.environ)
    env["PATH"] = env.get("PATH", "") + ":/usr/local/go/bin"
    go = shutil.which("go", path=env["PATH"])
    if go is None:
        pytest.skip("no Go toolchain (expected /usr/local/go/bin/go)")
    done = subprocess.run(
        [go, "test", "-count=1", "./..."],
        cwd=HARNESS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "FAIL" not in done.stdout
