"""The arm64 cross build (Makefile.arm64) and its checks. Marker `arm64`: needs the
cross toolchain (tests/arm64/provision.sh installs it as root) and Go."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "arm64: cross-builds the arm64 bridge and checks it under qemu-aarch64"
    )
