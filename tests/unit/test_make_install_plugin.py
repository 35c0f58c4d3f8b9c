"""`make install-plugin PLUGIN_DIR=...` puts a runnable containerd-driver where Nomad's
plugin_dir is, and says plainly when there is nothing to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "-s", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )


@pytest.mark.skipif(MAKE is None, reason="make not installed")
def test_help_lists_install_plugin() -> None:
    res = make("help")
    assert res.returncode == 0, res.stderr
    assert any(ln.split()[:1] == ["install-plugin"] for ln in res.stdout.splitlines()), res.stdout


@pytest.mark.skipif(MAKE is None, reason="make not installed")
def test_installs_a_runnable_plugin(tmp_path: Path) -> None:
    scripts = Path(sys.executable).parent
    if not os.access(scripts / "containerd-driver", os.X_OK) and not shutil.which("containerd-driver"):
        pytest.skip("containerd-driver is not installed (make dev)")
    plugin_dir = tmp_path / "plugins" / "nested"  # created if missing
    res = make("install-plugin", f"PLUGIN_DIR={plugin_dir}", f"PYTHON={sys.executable}")
    assert res.returncode == 0, res.stderr
    plugin = plugin_dir / "containerd-driver"
    assert plugin.is_file() and not plugin.is_symlink()
    assert os.access(plugin, os.X_OK)
    assert str(plugin) in res.stdout
    # run by hand (no go-plugin magic cookie) it explains itself and exits 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMAD_PLUGIN")}
    ran = subprocess.run([str(plugin)], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert ran.returncode == 1
    assert "plugin_dir" in ran.stdout + ran.stderr

    # again over the copy, and over a symlink an earlier install may have left: both replaced
    assert make("install-plugin", f"PLUGIN_DIR={plugin_dir}", f"PYTHON={sys.executable}").returncode == 0
    plugin.unlink()
    plugin.symlink_to(tmp_path / "elsewhere")
    assert make("install-plugin", f"PLUGIN_DIR={plugin_dir}", f"PYTHON={sys.executable}").returncode == 0
    assert plugin.is_file() and not plugin.is_symlink()


@pytest.mark.skipif(MAKE is None, reason="make not installed")
def test_missing_script_gives_one_clear_message(tmp_path: Path) -> None:
    # a PYTHON that cannot answer and a PATH with nothing on it: nothing to install
    empty = tmp_path / "empty-path"
    empty.mkdir()
    plugin_dir = tmp_path / "plugins"
    res = make(
        "install-plugin",
        f"PLUGIN_DIR={plugin_dir}",
        f"PYTHON={tmp_path / 'no-such-python'}",
        env={"PATH": str(empty), "HOME": str(tmp_path)},
    )
    assert res.returncode != 0
    assert "containerd-driver is not installed" in res.stderr, res.stderr
    assert "make dev" in res.stderr
    assert not plugin_dir.exists()
