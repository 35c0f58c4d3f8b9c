"""Log files the API keeps for tasks started without explicit stdout/stderr paths.

Layout: <state dir>/logs/<namespace>/<container id>/{stdout,stderr}; the state dir is
$NOMAD_CTR_STATE_DIR or /run/nomad-ctr. The shim appends to these files itself, so
output keeps flowing while no Python process is around.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from nomad_ctr._invalid import invalid

__all__ = ["DEFAULT_STATE_DIR", "LogFiles", "state_dir"]

DEFAULT_STATE_DIR = "/run/nomad-ctr"
STREAMS = ("stdout", "stderr")


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    return Path(explicit or os.environ.get("NOMAD_CTR_STATE_DIR") or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class LogFiles:
    directory: Path

    @classmethod
    def for_container(cls, root: Path, namespace: str, container_id: str) -> LogFiles:
        # namespace and id are validated identifiers (no "/" or ".."), so this stays in root.
        return cls(root / "logs" / namespace / container_id)

    def path(self, stream: str) -> Path:
        if stream not in STREAMS:
            raise invalid("stream", stream, "must be 'stdout' or 'stderr'")
        return self.directory / stream

    def create(self, streams: tuple[str, ...] = STREAMS) -> dict[str, str]:
        """Make the directory and the streams' files (kept if present); stream -> path."""
        for attempt in range(3):
            try:
                return self._create(streams)
            except FileNotFoundError:
                # remove() of another container pruned the namespace directory between
                # our mkdir and open; make it again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _create(self, streams: tuple[str, ...]) -> dict[str, str]:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        paths = {}
        for stream in streams:
            p = self.path(stream)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
            os.close(fd)
            paths[stream] = str(p)
        return paths

    def exists(self) -> bool:
        return self.directory.is_dir()

    def read(self, stream: str) -> bytes:
        return self.path(stream).read_bytes()

    def remove(self) -> None:
        """Remove the container's logs, and its namespace directory once empty."""
        shutil.rmtree(self.directory, ignore_errors=True)
        try:
            self.directory.parent.rmdir()
        except OSError:
            pass  # not empty (other containers) or already gone
