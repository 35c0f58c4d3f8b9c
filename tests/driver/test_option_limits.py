"""The edges of the size and length rules, on real containers: what the config checks
accept at their limits the runtime and the kernel accept too (tmpfs size with a t
suffix and in % of RAM, shm_size at its 1k minimum, an argument of 131071 bytes)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from driverkit import Plugin, task_config

pytestmark = pytest.mark.driver

PAGE_KIB = 4


def run(plugin: Plugin, alloc, config: bytes) -> tuple[int, str, str]:
    a = alloc()
    task = a.task(config)
    plugin.start(task)
    code = plugin.wait(task.id).result.exit_code
    time.sleep(0.3)  # let the drain thread catch the last bytes
    return code, a.stdout.text(), a.stderr.text()


def df_kib(path: str) -> str:
    return f"df -k {path} | tail -1 | awk '{{print $2}}'"


def test_tmpfs_size_in_terabytes_and_percent(plugin: Plugin, alloc, images) -> None:
    script = f"{df_kib('/t')}; {df_kib('/p')}"
    code, out, err = run(plugin, alloc, task_config(
        image=images.plain, command="sh", args=["-c", script],
        mounts=[{"type": "tmpfs", "target": "/t", "options": ["size=1t"]},
                {"type": "tmpfs", "target": "/p", "options": ["size=50%", "nr_inodes=1k"]}]))
    assert code == 0, err
    mem_kib = int(re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M).group(1))  # type: ignore[union-attr]
    half_pages = -(-mem_kib * 50 // 100 // PAGE_KIB)  # the kernel: % of RAM, rounded up to pages
    assert out.split() == [str(1 << 30), str(half_pages * PAGE_KIB)]


def test_shm_size_minimum_is_what_containerd_takes(plugin: Plugin, alloc, images) -> None:
    code, out, err = run(plugin, alloc, task_config(image=images.plain, command="sh",
                                                    args=["-c", df_kib("/dev/shm")], shm_size="1k"))
    assert (code, out.strip()) == (0, str(PAGE_KIB)), err  # 1024 bytes, one page


def test_longest_argument_reaches_the_process(plugin: Plugin, alloc, images) -> None:
    code, out, err = run(plugin, alloc, task_config(image=images.plain, command="sh",
                                                    args=["-c", "echo ${#0}", "x" * 131071]))
    assert (code, out) == (0, "131071\n"), err
