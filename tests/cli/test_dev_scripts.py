"""The dev VM's provisioning (Vagrantfile, scripts/vagrant-provision.sh) and the arm64
toolchain script cannot run here; check what can be checked: shell syntax, shellcheck,
and that the pieces agree with each other."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nomad_ctr.localrun import load_agent

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
# every shell script we ship or run in CI
SCRIPTS = sorted([*REPO.glob("scripts/*.sh"), REPO / ".ci" / "run", *REPO.glob("tests/**/*.sh")])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_syntax(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_clean(script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    proc = subprocess.run(
        ["shellcheck", "-S", "info", str(script)], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout


def test_vagrantfile_points_at_the_provision_script() -> None:
    text = (REPO / "Vagrantfile").read_text()
    assert 'config.vm.box = "debian/bookworm64"' in text
    path = re.search(r'provision "shell", path: "([^"]+)"', text)
    assert path and (REPO / path.group(1)).is_file()


def test_plugin_dir_matches_the_example_agent_config() -> None:
    script = (REPO / "scripts" / "vagrant-provision.sh").read_text()
    plugin_dir = re.search(r"^PLUGIN_DIR=(\S+)", script, re.MULTILINE)
    agent = load_agent(REPO / "example" / "agent.hcl")
    assert plugin_dir and plugin_dir.group(1) == agent.plugin_dir
    assert "containerd-driver" in agent.plugins


def test_go_version_comes_from_go_mod() -> None:
    go_mod = (REPO / "gobridge" / "go.mod").read_text()
    assert re.search(r"^go [0-9]+\.[0-9]+(\.[0-9]+)?$", go_mod, re.MULTILINE), (
        "the provision script reads this line"
    )
