"""The per-container state file and lock behind setup/teardown_network."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .cni import validate_container_id
from .errors import NetError

STATE_VERSION = 1


def state_path(state_dir: Path, container_id: str) -> Path:
    validate_container_id(container_id)
    return Path(state_dir) / f"{container_id}.json"


class ContainerLock:
    """flock on <state_dir>/<id>.lock: one setup/teardown per container at a time.

    The lock file is removed when the attachment is gone; a waiter that then
    holds a lock on the unlinked file notices the inode changed and retries.
    """

    def __init__(self, state_dir: Path, container_id: str) -> None:
        self.path = Path(state_dir) / f"{container_id}.lock"
        self.fd = -1
        self.remove = False

    def __enter__(self) -> ContainerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)

    def __exit__(self, *_: object) -> None:
        if self.remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise NetError(f"network state {str(path)!r} is unreadable: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise NetError(f"network state {str(path)!r} has an unknown format")
    return data
