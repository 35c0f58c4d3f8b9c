"""Session-wide fixtures for the real test stack (see docs/test-stack.md).

`stack`  addresses and credentials of the test containerd and registries
`images` references of the test images that tests/images/build.py pushes

Tests marked integration or driver need root and a running stack; tests marked
net need root. Without them they are skipped with the reason, unless
NOMAD_CTR_REQUIRE_STACK=1 (CI sets it): then they fail, so a broken stack can
never pass as a green run full of skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

import pytest

ENV_FILE = Path(os.environ.get("NOMAD_CTR_STACK_ENV", "/run/nomad-ctr-test/env"))
ENV_KEYS = (
    "CONTAINERD_ADDRESS",
    "NOMAD_CTR_REGISTRY",
    "NOMAD_CTR_PRIVATE_REGISTRY",
    "NOMAD_CTR_REGISTRY_USER",
    "NOMAD_CTR_REGISTRY_PASSWORD",
)
NEEDS_STACK = ("integration", "driver")
NEEDS_ROOT = ("integration", "driver", "net")


@dataclass(frozen=True)
class Stack:
    containerd_address: str
    registry: str  # host:port, no auth
    private_registry: str  # host:port, htpasswd
    registry_user: str
    registry_password: str = field(repr=False)  # never in reprs or logs


@dataclass(frozen=True)
class Images:
    plain: str  # busybox, CMD ["sh"]
    configured: str  # ENTRYPOINT/CMD/WORKDIR/ENV/USER set
    big: str  # ~50 MB over several layers
    private: str  # like plain, private registry only
    hello: str  # prints "hello from nomad-ctr" every 3 s

    def all(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        line = line.strip().removeprefix("export ").strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def pytest_configure(config: pytest.Config) -> None:
    # Tests and the code under test read the stack from the environment: fill
    # it from the env file so a plain `pytest` works without `source`.
    for key, value in _read_env_file(ENV_FILE).items():
        if key in ENV_KEYS:
            os.environ.setdefault(key, value)


def _require_stack() -> bool:
    return os.environ.get("NOMAD_CTR_REQUIRE_STACK") == "1"


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


@cache
def _stack_problem() -> str | None:
    """Why the stack cannot be used, or None if it answers."""
    missing = [k for k in ENV_KEYS if not os.environ.get(k)]
    if missing:
        return f"test stack env not set ({', '.join(missing)}); run scripts/stack.sh up"
    address = os.environ["CONTAINERD_ADDRESS"].removeprefix("unix://")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect(address)
    except OSError as err:
        return f"test containerd not answering at {address} ({err.strerror or err}); run scripts/stack.sh up"
    public = os.environ["NOMAD_CTR_REGISTRY"]
    if (code := _http_status(f"http://{public}/v2/")) != 200:
        return f"public test registry {public} answered {code} to /v2/ (want 200); run scripts/stack.sh up"
    private = os.environ["NOMAD_CTR_PRIVATE_REGISTRY"]
    if (code := _http_status(f"http://{private}/v2/")) != 401:
        return f"private test registry {private} answered {code} to anonymous /v2/ (want 401); run scripts/stack.sh up"
    return None


def _unusable(reason: str) -> None:
    if _require_stack():
        pytest.fail(f"NOMAD_CTR_REQUIRE_STACK=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    marks = {m.name for m in item.iter_markers()}
    if marks & set(NEEDS_ROOT) and os.geteuid() != 0:
        _unusable(f"needs root ({'/'.join(sorted(marks & set(NEEDS_ROOT)))} test)")
    if marks & set(NEEDS_STACK) and (problem := _stack_problem()):
        _unusable(problem)
    if "e2e" in marks and shutil.which("nomad") is None:
        # Not covered by NOMAD_CTR_REQUIRE_STACK: no registry ships Nomad here.
        pytest.skip("e2e test needs a nomad binary on PATH")


@pytest.fixture(scope="session")
def stack() -> Stack:
    if problem := _stack_problem():
        _unusable(problem)
    env = os.environ
    return Stack(
        containerd_address=env["CONTAINERD_ADDRESS"],
        registry=env["NOMAD_CTR_REGISTRY"],
        private_registry=env["NOMAD_CTR_PRIVATE_REGISTRY"],
        registry_user=env["NOMAD_CTR_REGISTRY_USER"],
        registry_password=env["NOMAD_CTR_REGISTRY_PASSWORD"],
    )


@pytest.fixture(scope="session")
def images(stack: Stack) -> Images:
    def ref(host: str, name: str) -> str:
        return f"{host}/nomad-ctr/{name}:latest"

    return Images(
        plain=ref(stack.registry, "plain"),
        configured=ref(stack.registry, "configured"),
        big=ref(stack.registry, "big"),
        private=ref(stack.private_registry, "private"),
        hello=ref(stack.registry, "hello"),
    )
