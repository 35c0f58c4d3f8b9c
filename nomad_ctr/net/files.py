"""Rewrite a file in place, keeping its inode.

/etc/hosts and /etc/resolv.conf are bind-mounted into containers. A bind mount
pins the inode, so replacing the file by rename (the usual atomic write) would
leave the container reading the old file. We overwrite from offset 0 and then
truncate, so a reader never sees an empty file (at worst a mix for an instant).

The last path component is never followed if it is a symlink (O_NOFOLLOW): these
files live in directories a task may be able to write to, and following a planted
link would let it have us overwrite any file on the host.
"""

from __future__ import annotations

import errno
import os
import stat


def write_in_place(path: str | os.PathLike[str], content: str, mode: int = 0o644) -> None:
    data = content.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "refusing to write through a symlink", os.fspath(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
