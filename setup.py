"""Build glue only: compiles gobridge (Go, -buildmode=c-shared) into nomad_ctr/_bridge.

Metadata lives in pyproject.toml. The library is loaded with cffi in ABI mode, so it does
not link libpython and the wheel is tagged py3-none-<platform>.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_ext import build_ext
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent
GOBRIDGE = ROOT / "gobridge"
OUTPUT = ROOT / "nomad_ctr" / "_bridge" / "libgobridge.so"


def package_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise RuntimeError("pyproject.toml has no version")
    return match.group(1)


def go_binary() -> str:
    found = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not os.path.exists(found) and not shutil.which(found):
        raise SystemExit(
            "error: building nomad_ctr needs the Go toolchain (go >= 1.26) with cgo and a C "
            "compiler. Install Go from https://go.dev/dl/ and put it on PATH (or set GO=/path/to/go)."
        )
    return found


def build_gobridge(output: Path = OUTPUT) -> None:
    """go build -buildmode=c-shared; honours GOARCH, CC and GOFLAGS from the environment."""
    env = dict(os.environ, CGO_ENABLED="1")
    cmd = [
        go_binary(), "build", "-buildmode=c-shared", "-trimpath",
        "-ldflags", f"-s -w -X main.packageVersion={package_version()}",
        "-o", str(output), ".",
    ]
    print("gobridge:", " ".join(cmd), f"(GOARCH={env.get('GOARCH', 'host')}, CC={env.get('CC', 'default')})")
    subprocess.run(cmd, cwd=GOBRIDGE, env=env, check=True)


class build_go(Command):
    description = "build gobridge/ into nomad_ctr/_bridge/libgobridge.so"
    user_options: list[tuple[str, str | None, str]] = []  # noqa: RUF012 (distutils API)

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        build_gobridge()


class build_ext_with_go(build_ext):
    """build_ext runs for regular and editable installs; build the Go library first and
    copy it into the build tree when not building in place."""

    def run(self) -> None:
        self.run_command("build_go")
        super().run()
        if not self.inplace:
            target = Path(self.build_lib) / "nomad_ctr" / "_bridge" / OUTPUT.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(OUTPUT, target)

    def get_outputs(self) -> list[str]:
        return [*super().get_outputs(), str(Path(self.build_lib) / "nomad_ctr" / "_bridge" / OUTPUT.name)]


class platform_wheel(bdist_wheel):
    """py3-none-<platform>: platform-specific (.so inside) but not tied to a CPython ABI."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build_go": build_go, "build_ext": build_ext_with_go, "bdist_wheel": platform_wheel},
    distclass=BinaryDistribution,
)
