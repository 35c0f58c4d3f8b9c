"""The alloc dir layout and the logmon copier, with real FIFOs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nomad_ctr.localrun.allocdir import LogMon, build_alloc_dir

pytestmark = pytest.mark.unit


def test_layout_matches_nomad(tmp_path: Path) -> None:
    paths = build_alloc_dir(tmp_path / "a1", "web")
    for sub in ("alloc/logs", "alloc/data", "alloc/tmp", "web/local", "web/secrets", "web/tmp"):
        assert (tmp_path / "a1" / sub).is_dir(), sub
    assert stat.S_ISFIFO(os.stat(tmp_path / "a1/alloc/logs/.web.stdout.fifo").st_mode)
    assert stat.S_ISFIFO(os.stat(tmp_path / "a1/alloc/logs/.web.stderr.fifo").st_mode)
    assert stat.S_IMODE(os.stat(tmp_path / "a1/alloc/data").st_mode) == 0o777
    # building again (a recovered task) keeps what is there
    (paths.local_dir / "keep").write_text("x")
    build_alloc_dir(tmp_path / "a1", "web")
    assert (paths.local_dir / "keep").read_text() == "x"


@pytest.mark.parametrize("name", ["", "a/b", ".."])
def test_task_names_that_are_not_directory_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="cannot name a directory"):
        build_alloc_dir(tmp_path, name)


def test_logmon_copies_both_streams_and_echoes(tmp_path: Path) -> None:
    paths = build_alloc_dir(tmp_path, "t")
    seen: list[tuple[str, bytes]] = []
    mon = LogMon(paths, echo=lambda stream, chunk: seen.append((stream, chunk)))
    # the driver side: open for writing (never blocks, logmon holds the read end)
    out = os.open(paths.stdout_fifo, os.O_WRONLY)
    err = os.open(paths.stderr_fifo, os.O_WRONLY)
    os.write(out, b"hello\n")
    os.write(err, b"oops\n")
    os.close(out)  # a writer going away is not the end: it may come back (plugin restart)
    out = os.open(paths.stdout_fifo, os.O_WRONLY)
    os.write(out, b"again\n")
    os.close(out)
    os.close(err)
    mon.stop(quiet=0.3)
    assert paths.stdout_file.read_bytes() == b"hello\nagain\n"
    assert paths.stderr_file.read_bytes() == b"oops\n"
    assert b"".join(c for s, c in seen if s == "stdout") == b"hello\nagain\n"
    assert b"".join(c for s, c in seen if s == "stderr") == b"oops\n"
