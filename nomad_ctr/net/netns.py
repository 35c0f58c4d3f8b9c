"""Persistent network namespaces (bind-mounted files, like `ip netns`).

Nothing here forks the Python process without exec: once gobridge's Go runtime
is loaded a bare fork() is unsafe, and pyroute2's ``netns.create`` forks a
multiprocessing child. So namespaces are created with ``ip netns add`` (a name)
or ``unshare --net=<path>`` (a path), commands run inside with ``nsenter``, and
a Python callable runs in a dedicated thread that ``setns()`` into the namespace
(setns(CLONE_NEWNET) only affects the calling thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import NetnsError

NETNS_RUN_DIR = Path("/var/run/netns")

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_CLONE_NEWNET = 0x40000000
_MNT_DETACH = 2

T = TypeVar("T")


def netns_path(netns: str | os.PathLike[str]) -> Path:
    """Path of a namespace given by name (under /var/run/netns) or by path."""
    text = os.fspath(netns)
    if not text:
        raise ValueError("netns: empty name or path")
    if "/" in text:
        path = Path(text)
        if not path.is_absolute():
            raise ValueError(f"netns: path {text!r} must be absolute")
        return path
    if not _NAME_RE.match(text) or text in (".", ".."):
        raise ValueError(f"netns: invalid name {text!r}")
    return NETNS_RUN_DIR / text


def _nsfs_dev() -> int:
    return os.stat("/proc/self/ns/net").st_dev


def netns_exists(netns: str | os.PathLike[str]) -> bool:
    """True if the path is a live namespace mount (not a stale empty file).

    A namespace bind mount lives on nsfs; after a crash or a failed umount only
    a regular file on the parent filesystem is left, with another st_dev.
    """
    try:
        return os.stat(netns_path(netns)).st_dev == _nsfs_dev()
    except FileNotFoundError:
        return False


def _run(argv: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise NetnsError(f"{what}: {' '.join(argv)} exited {proc.returncode}: {detail}")


def create_netns(netns: str | os.PathLike[str], *, exist_ok: bool = False) -> Path:
    """Create a persistent network namespace and bring its loopback up.

    A bare name becomes /var/run/netns/<name> (via ``ip netns add``, which also
    makes that directory a shared mount so containers see later mounts). An
    absolute path gets the namespace bind-mounted on it (``unshare --net=``).
    Returns the namespace path.
    """
    path = netns_path(netns)
    if netns_exists(path):
        if exist_ok:
            return path
        raise NetnsError(f"netns {str(path)!r} already exists")
    if path.exists():
        # A stale mount point left by a crash: reuse the file.
        path.unlink()
    if path.parent == NETNS_RUN_DIR:
        _run(["ip", "netns", "add", path.name], f"create netns {path.name!r}")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o444, exist_ok=False)
        try:
            _run(["unshare", f"--net={path}", "true"], f"create netns {str(path)!r}")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    try:
        _run(
            ["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"],
            f"bring up loopback in {str(path)!r}",
        )
    except BaseException:
        delete_netns(path)
        raise
    return path


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def delete_netns(netns: str | os.PathLike[str]) -> bool:
    """Unmount and remove a namespace file. Idempotent: False if nothing was there.

    Processes still inside keep the namespace alive; only the name goes away.
    """
    path = netns_path(netns)
    if not path.exists():
        return False
    # Only a live namespace is a mount; a stale file (crash) is just unlinked.
    if netns_exists(path) and _libc().umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise NetnsError(f"umount netns {str(path)!r}: {os.strerror(err)}")
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def list_netns(prefix: str = "", directory: Path = NETNS_RUN_DIR) -> list[str]:
    """Names of live namespaces in ``directory`` that start with ``prefix``."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    return [n for n in names if n.startswith(prefix) and netns_exists(directory / n)]


def nsenter_argv(netns: str | os.PathLike[str], argv: Sequence[str]) -> list[str]:
    """argv that runs ``argv`` inside the namespace (network only)."""
    if not argv:
        raise ValueError("argv: empty command")
    return ["nsenter", f"--net={netns_path(netns)}", "--", *argv]


def run_in_netns(
    netns: str | os.PathLike[str], argv: Sequence[str], **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """subprocess.run(argv) inside the namespace; kwargs go to subprocess.run."""
    if not netns_exists(netns):
        raise NetnsError(f"netns {str(netns_path(netns))!r} does not exist")
    return subprocess.run(nsenter_argv(netns, argv), **kwargs)


def popen_in_netns(
    netns: str | os.PathLike[str], argv: Sequence[str], **kwargs: Any
) -> subprocess.Popen[Any]:
    """subprocess.Popen(argv) inside the namespace (e.g. a test server)."""
    if not netns_exists(netns):
        raise NetnsError(f"netns {str(netns_path(netns))!r} does not exist")
    return subprocess.Popen(nsenter_argv(netns, argv), **kwargs)


def call_in_netns(
    netns: str | os.PathLike[str], fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Call ``fn`` in a fresh thread that has joined the namespace; return its result.

    Sockets opened by ``fn`` belong to the namespace and keep working after the
    call returns. The thread exits afterwards, so the caller's threads never
    change namespace.
    """
    path = netns_path(netns)
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            error.append(NetnsError(f"open netns {str(path)!r}: {exc.strerror}"))
            return
        try:
            if _libc().setns(fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                error.append(NetnsError(f"setns {str(path)!r}: {os.strerror(err)}"))
                return
        finally:
            os.close(fd)
        try:
            result.append(fn(*args, **kwargs))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns:{path.name}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
