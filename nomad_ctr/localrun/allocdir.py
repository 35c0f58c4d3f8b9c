"""An allocation directory laid out like the Nomad client's, and a small logmon: it
reads a task's stdout/stderr FIFOs and copies them into alloc/logs/<task>.<stream>.0
(optionally echoing every chunk to a callback, e.g. a terminal).

    <alloc_dir>/alloc/{logs,data,tmp}
    <alloc_dir>/<task>/{local,secrets,tmp}
    <alloc_dir>/alloc/logs/.<task>.stdout.fifo  (the driver writes, we read)
"""

from __future__ import annotations

import errno
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Echo", "LogMon", "TaskPaths", "build_alloc_dir"]

# (stream name "stdout" | "stderr", bytes) for every chunk read
Echo = Callable[[str, bytes], None]


@dataclass(frozen=True)
class TaskPaths:
    alloc_dir: Path
    task: str

    @property
    def shared_dir(self) -> Path:
        return self.alloc_dir / "alloc"

    @property
    def log_dir(self) -> Path:
        return self.shared_dir / "logs"

    @property
    def task_dir(self) -> Path:
        return self.alloc_dir / self.task

    @property
    def local_dir(self) -> Path:
        return self.task_dir / "local"

    @property
    def secrets_dir(self) -> Path:
        return self.task_dir / "secrets"

    @property
    def stdout_fifo(self) -> Path:
        return self.log_dir / f".{self.task}.stdout.fifo"

    @property
    def stderr_fifo(self) -> Path:
        return self.log_dir / f".{self.task}.stderr.fifo"

    @property
    def stdout_file(self) -> Path:
        return self.log_dir / f"{self.task}.stdout.0"

    @property
    def stderr_file(self) -> Path:
        return self.log_dir / f"{self.task}.stderr.0"


def build_alloc_dir(alloc_dir: str | Path, task: str) -> TaskPaths:
    """Create the directories and FIFOs (existing ones are kept, so a recovered task
    reuses them). Task-writable directories are world-writable, as Nomad makes them,
    so a task running as another user can use them; secrets stay private to root."""
    if not task or "/" in task or task in (".", ".."):
        raise ValueError(f"task name {task!r} cannot name a directory")
    paths = TaskPaths(Path(alloc_dir).absolute(), task)
    for path, mode in (
        (paths.alloc_dir, 0o755),
        (paths.shared_dir, 0o777),
        (paths.log_dir, 0o777),
        (paths.shared_dir / "data", 0o777),
        (paths.shared_dir / "tmp", 0o777),
        (paths.task_dir, 0o777),
        (paths.local_dir, 0o777),
        (paths.secrets_dir, 0o777),
        (paths.task_dir / "tmp", 0o777),
    ):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
    for fifo in (paths.stdout_fifo, paths.stderr_fifo):
        try:
            os.mkfifo(fifo, 0o600)
        except FileExistsError:
            pass
    return paths


class LogMon:
    """Copies both FIFOs of a task into its log files until stopped.

    The FIFOs are opened read-write: opening never blocks, a writer that goes away and
    comes back (plugin restart) is not an end of file, and the driver can open the
    write side without ENXIO.
    """

    def __init__(self, paths: TaskPaths, echo: Echo | None = None) -> None:
        self.paths = paths
        self._echo = echo
        self._stop = threading.Event()
        self._quiet = 0.0
        self._threads: list[threading.Thread] = []
        fds: list[tuple[str, int, int]] = []
        try:
            for stream, fifo, out in (
                ("stdout", paths.stdout_fifo, paths.stdout_file),
                ("stderr", paths.stderr_fifo, paths.stderr_file),
            ):
                rfd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    wfd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
                except OSError:
                    os.close(rfd)
                    raise
                fds.append((stream, rfd, wfd))
        except OSError:
            for _, rfd, wfd in fds:
                os.close(rfd)
                os.close(wfd)
            raise
        for stream, rfd, wfd in fds:
            t = threading.Thread(
                target=self._copy,
                args=(stream, rfd, wfd),
                name=f"logmon-{paths.task}-{stream}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)

    def _copy(self, stream: str, rfd: int, wfd: int) -> None:
        try:
            while True:
                stopping = self._stop.is_set()
                ready, _, _ = select.select([rfd], [], [], self._quiet if stopping else 0.2)
                if not ready:
                    if stopping:
                        return  # quiet for the whole grace period after stop()
                    continue
                try:
                    chunk = os.read(rfd, 65536)
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EINTR):
                        continue
                    return
                if not chunk:
                    continue
                os.write(wfd, chunk)
                if self._echo is not None:
                    try:
                        self._echo(stream, chunk)
                    except Exception:  # noqa: BLE001 - a broken terminal must not stop the copy
                        self._echo = None
        finally:
            os.close(rfd)
            os.close(wfd)

    def stop(self, quiet: float = 0.2) -> None:
        """Copy what is still buffered until `quiet` seconds pass without data, then stop."""
        self._quiet = max(quiet, 0.001)
        self._stop.set()
        for t in self._threads:
            t.join()

    def __enter__(self) -> LogMon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
