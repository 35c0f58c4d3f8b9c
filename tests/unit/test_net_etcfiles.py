"""write_etc_files: hosts + resolv.conf + hostname in a task directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nomad_ctr.net import build_resolv_conf, parse_resolv_conf, write_etc_files

pytestmark = pytest.mark.unit


def test_writes_three_files_and_rewrites_in_place(tmp_path: Path) -> None:
    task = tmp_path / "task"
    files = write_etc_files(task, hostname="web", dns=build_resolv_conf(["10.0.0.53"]))
    assert files.hostname.read_text() == "web\n"
    assert "127.0.1.1\tweb" in files.hosts.read_text()
    assert parse_resolv_conf(files.resolv_conf.read_text()).nameservers == ("10.0.0.53",)
    inodes = [os.stat(p).st_ino for p, _ in files.mounts()]
    again = write_etc_files(
        task,
        hostname="web",
        ip="10.89.0.2",
        extra_hosts=["db:10.89.0.3"],
        dns=build_resolv_conf(["10.0.0.54"]),
    )
    assert [os.stat(p).st_ino for p, _ in again.mounts()] == inodes
    hosts = again.hosts.read_text()
    assert "10.89.0.2\tweb" in hosts and "10.89.0.3\tdb" in hosts and "127.0.1.1" not in hosts
    assert [dst for _, dst in again.mounts()] == ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    task = tmp_path / "task"
    with pytest.raises(ValueError, match="'db:nope'"):
        write_etc_files(task, hostname="web", extra_hosts=["db:nope"], dns=build_resolv_conf())
    with pytest.raises(ValueError, match="hostname"):
        write_etc_files(task, hostname="bad_name", dns=build_resolv_conf())
    assert not task.exists()


def test_planted_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    task = tmp_path / "task"
    task.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (task / "hosts").symlink_to(victim)
    with pytest.raises(OSError, match="symlink"):
        write_etc_files(task, hostname="web", dns=build_resolv_conf())
    assert victim.read_text() == "precious\n"
    (task / "hosts").unlink()
    os.mkfifo(task / "hosts")  # a FIFO without a reader: refused, never blocks
    with pytest.raises(OSError):
        write_etc_files(task, hostname="web", dns=build_resolv_conf())
