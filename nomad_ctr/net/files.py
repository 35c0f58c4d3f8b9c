"""Rewrite a file in place, keeping its inode.

/etc/hosts and /etc/resolv.conf are bind-mounted into containers. A bind mount
pins the inode, so replacing the file by rename (the usual atomic write) would
leave the container reading the old file. We overwrite from offset 0 and then
truncate, so a reader never sees an empty file (at worst a mix for an instant).
"""

from __future__ import annotations

import os


def write_in_place(path: str | os.PathLike[str], content: str, mode: int = 0o644) -> None:
    data = content.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
