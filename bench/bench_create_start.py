#!/usr/bin/env python3
"""Benchmark (not a test): container create+start and delete latency, nomad_ctr vs ctr.

Both sides start the same cached image in the same namespace, `sleep 600` as the process,
in interleaved rounds (API, then ctr, then API, ...) so drift in the machine's load hits
both alike. Also measures the cost of a no-op bridge call.

    python bench/bench_create_start.py [--rounds 20] [--image REF] [--address SOCK]

Needs root and a containerd (CONTAINERD_ADDRESS, default the test stack's socket).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

import nomad_ctr
from nomad_ctr import Client, ContainerSpec, errors

DEFAULT_ADDRESS = "/run/nomad-ctr-test/containerd.sock"
DEFAULT_IMAGE = "127.0.0.1:5000/nomad-ctr/plain:latest"
ARGS = ["sleep", "600"]


def ctr(address: str, namespace: str, *args: str, check: bool = True) -> None:
    subprocess.run(["ctr", "--address", address, "-n", namespace, *args], check=check,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def api_round(client: Client, image: str) -> tuple[float, float]:
    cid = f"bench-api-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    c = client.containers.create(cid, image, spec=ContainerSpec(args=ARGS))
    try:
        c.start()
        t1 = time.perf_counter()
    finally:
        t_del = time.perf_counter()
        c.delete(force=True)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t_del


def ctr_round(address: str, namespace: str, image: str) -> tuple[float, float]:
    cid = f"bench-ctr-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    try:
        ctr(address, namespace, "run", "-d", image, cid, *ARGS)
        t1 = time.perf_counter()
    finally:
        t_del = time.perf_counter()
        ctr(address, namespace, "task", "rm", "-f", cid, check=False)
        ctr(address, namespace, "containers", "rm", cid, check=False)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t_del


def median_us(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default=os.environ.get("CONTAINERD_ADDRESS", DEFAULT_ADDRESS))
    p.add_argument("--namespace", default="nctr-bench")
    p.add_argument("--image", default=DEFAULT_IMAGE)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--noop-calls", type=int, default=2000)
    opts = p.parse_args()

    with Client(address=opts.address, namespace=opts.namespace, timeout=60) as client:
        try:
            client.images.get(opts.image)
        except errors.ImageNotFound:
            client.images.pull(opts.image, timeout=300)
        # warm up both paths once (shim binaries, page cache, the bridge's first dial)
        api_round(client, opts.image)
        ctr_round(opts.address, opts.namespace, opts.image)

        api_start, api_del, ctr_start, ctr_del = [], [], [], []
        for _ in range(opts.rounds):
            s, d = api_round(client, opts.image)
            api_start.append(s)
            api_del.append(d)
            s, d = ctr_round(opts.address, opts.namespace, opts.image)
            ctr_start.append(s)
            ctr_del.append(d)

        from nomad_ctr import _bridge  # the benchmark may look below the API

        echo_us = median_us(lambda: _bridge.call("debug.echo", {}), opts.noop_calls)
        version_us = median_us(client.version, opts.noop_calls)

    ms = lambda xs: statistics.median(xs) * 1e3
    print(f"nomad_ctr {nomad_ctr.__version__}; {opts.rounds} interleaved rounds; image {opts.image}")
    print(f"{'operation':<28}{'nomad_ctr ms':>14}{'ctr ms':>10}{'ratio':>8}")
    for name, a, b in (("create+start (median)", api_start, ctr_start),
                       ("delete (median)", api_del, ctr_del)):
        print(f"{name:<28}{ms(a):>14.1f}{ms(b):>10.1f}{ms(a) / ms(b):>8.2f}")
    print(f"{'no-op bridge call (debug.echo)':<31}{echo_us:>8.1f} us")
    print(f"{'client.version() round trip':<31}{version_us:>8.1f} us")
    ratio = ms(api_start) / ms(ctr_start)
    print(f"create+start ratio nomad_ctr/ctr = {ratio:.2f} (goal <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
