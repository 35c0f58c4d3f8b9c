#!/usr/bin/env python3
"""Benchmark (not a test): a task's start and destroy through the containerd-driver
plugin, launched as Nomad launches it, against `ctr run -d` / `ctr task kill` +
`ctr rm` of the same cached image, in interleaved rounds in one script; and the plugin's
memory (RSS) per running task.

The plugin's side is StartTask (spec, the driver's own CNI network, create, start) and
DestroyTask (kill, delete, network teardown); ctr's has no network, so the ratio also
shows what the network step costs. The image is pinned by digest, so StartTask finds it
locally and never pulls.

    python bench/bench_driver_start.py [--rounds 15] [--tasks 20] [--image REF]

Needs root and the test stack (CONTAINERD_ADDRESS, default the test stack's socket).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from nomad_ctr import Client
from nomad_ctr.localrun.jobfile import parse_job
from nomad_ctr.localrun.plugin import LocalPlugin

DEFAULT_ADDRESS = "/run/nomad-ctr-test/containerd.sock"
DEFAULT_IMAGE = "127.0.0.1:5000/nomad-ctr/plain:latest"

JOB = """
job "bench" {{
  group "g" {{
    task "t{n}" {{
      driver = "containerd-driver"
      config {{
        image   = "{image}"
        command = "sleep"
        args    = ["600"]
      }}
      resources {{
        cpu    = 50
        memory = 32
      }}
    }}
  }}
}}
"""


def ctr(address: str, namespace: str, *args: str) -> None:
    subprocess.run(["ctr", "--address", address, "-n", namespace, *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def plugin_round(plugin: LocalPlugin, image: str, n: int, alloc_root: Path) -> tuple[float, float]:
    task = parse_job(JOB.format(n=n, image=image))
    t0 = time.perf_counter()
    run = plugin.start_task(task, alloc_dir=alloc_root / f"a{n}")
    started = time.perf_counter() - t0
    run.stop_logs(quiet=0)
    t0 = time.perf_counter()
    run.destroy(force=True)
    return started, time.perf_counter() - t0


def ctr_round(address: str, namespace: str, image: str) -> tuple[float, float]:
    cid = f"bench-ctr-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    ctr(address, namespace, "run", "-d", image, cid, "sleep", "600")
    started = time.perf_counter() - t0
    t0 = time.perf_counter()
    ctr(address, namespace, "task", "kill", "-s", "SIGKILL", cid)
    while True:  # ctr task rm refuses a task that has not stopped yet
        done = subprocess.run(["ctr", "--address", address, "-n", namespace, "task", "rm", cid],
                              capture_output=True)
        if done.returncode == 0:
            break
        time.sleep(0.005)
    ctr(address, namespace, "containers", "rm", cid)
    return started, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--tasks", type=int, default=20, help="tasks running at once for the RSS figure")
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    ap.add_argument("--address", default=os.environ.get("CONTAINERD_ADDRESS", DEFAULT_ADDRESS))
    args = ap.parse_args()
    namespace = f"bench-drv-{uuid.uuid4().hex[:6]}"

    with Client(address=args.address, namespace=namespace, timeout=60) as client:
        image = client.images.pull(args.image, timeout=120)
        pinned = f"{args.image.rsplit(':', 1)[0]}@{image.digest}"
        client.images.pull(pinned, timeout=120)
        plugin = LocalPlugin.launch(plugin_config={
            "containerd_runtime": "io.containerd.runc.v2", "address": args.address, "namespace": namespace})
        alloc_root = Path(tempfile.mkdtemp(prefix="nomad-ctr-bench-"))
        try:
            plugin_round(plugin, pinned, 0, alloc_root)  # warm up both sides once
            ctr_round(args.address, namespace, pinned)
            ours, theirs = [], []
            for i in range(args.rounds):
                ours.append(plugin_round(plugin, pinned, i + 1, alloc_root))
                theirs.append(ctr_round(args.address, namespace, pinned))

            assert plugin.process is not None
            pid = plugin.process.proc.pid
            idle = rss_kib(pid)
            runs = [plugin.start_task(parse_job(JOB.format(n=1000 + i, image=pinned)),
                                      alloc_dir=alloc_root / f"m{i}") for i in range(args.tasks)]
            loaded = rss_kib(pid)
            for run in runs:
                run.stop_logs(quiet=0)
                run.destroy(force=True)
        finally:
            plugin.close()
            for c in client.containers.list():
                c.delete(force=True)
            for img in client.images.list():
                client.images.remove(img.name, sync=True)
        subprocess.run(["ctr", "--address", args.address, "namespaces", "remove", namespace],
                       capture_output=True)

    def med(xs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(x[i] for x in xs) * 1000

    print(f"containerd-driver vs ctr; {args.rounds} interleaved rounds; image {pinned}")
    print(f"{'operation':34}{'driver ms':>10}{'ctr ms':>10}{'ratio':>8}")
    for name, i in (("StartTask vs ctr run -d (median)", 0), ("DestroyTask vs kill+rm (median)", 1)):
        a, b = med(ours, i), med(theirs, i)
        print(f"{name:34}{a:10.1f}{b:10.1f}{a / b:8.2f}")
    print(f"plugin RSS: {idle / 1024:.1f} MiB idle, {loaded / 1024:.1f} MiB with {args.tasks} tasks "
          f"({(loaded - idle) / args.tasks:.0f} KiB per task)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
