"""`nomad-ctr run-job FILE.nomad`: run one task of a Nomad job through the driver plugin
with localrun, streaming its logs; Ctrl-C stops it with the job's kill_signal (a second
Ctrl-C stops it at once). Exits with the task's exit code (128 + signal if killed)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from nomad_ctr.cli.interrupts import Interrupts
from nomad_ctr.cli.main import CliError

__all__ = ["plugin_config_for", "run_job"]

DEFAULT_RUNTIME = "io.containerd.runc.v2"


def plugin_config_for(
    args: argparse.Namespace, agent: Any
) -> tuple[dict[str, Any], list[str] | None]:
    """The plugin config and command: the agent file's block if given (with --address /
    --namespace overriding it), else a default config on the given containerd."""
    from nomad_ctr.localrun.process import default_plugin_command

    command: list[str] | None = [args.plugin] if args.plugin else None
    if agent is not None:
        block = agent.plugins.get("containerd-driver")
        if block is None:
            raise CliError(f'{args.agent}: no plugin "containerd-driver" block')
        config = dict(block.config or {})
        if command is None and agent.plugin_dir:
            installed = Path(agent.plugin_dir) / "containerd-driver"
            if os.access(installed, os.X_OK):
                command = [str(installed)]
    else:
        config = {"containerd_runtime": DEFAULT_RUNTIME}
    if args.address:
        config["address"] = args.address
    if args.namespace:
        config["namespace"] = args.namespace
    return config, command or default_plugin_command()


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("    [%(name)s] %(message)s"))
    log = logging.getLogger("nomad_ctr.localrun")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)


def _write(stream: str, chunk: bytes) -> None:
    out = sys.stdout.buffer if stream == "stdout" else sys.stderr.buffer
    out.write(chunk)
    out.flush()


def run_job(args: argparse.Namespace) -> int:
    from nomad_ctr.localrun import LocalPlugin, load_agent, load_job

    _setup_logging(args.verbose)
    task = load_job(args.job, args.task)
    agent = load_agent(args.agent) if args.agent else None
    config, command = plugin_config_for(args, agent)
    keep = args.alloc_dir is not None
    alloc_dir = Path(args.alloc_dir) if keep else Path(tempfile.mkdtemp(prefix="nomad-ctr-alloc-"))
    max_kill = agent.max_kill_timeout if agent is not None else 30.0

    try:
        with (
            Interrupts() as interrupts,
            LocalPlugin.launch(command, plugin_config=config) as plugin,
        ):
            plugin.on_event(lambda e: print(f"==> {e.message}", file=sys.stderr, flush=True))
            print(
                f"==> starting task {task.name!r} of job {task.job_id!r} (alloc dir {alloc_dir})",
                file=sys.stderr,
                flush=True,
            )
            run = plugin.start_task(
                task, alloc_dir=alloc_dir, echo=_write, max_kill_timeout=max_kill
            )
            try:
                result = _wait(run, interrupts, args.stop_after)
            finally:
                run.destroy()
    finally:
        if not keep:
            shutil.rmtree(alloc_dir, ignore_errors=True)
    if result.err:
        raise CliError(f"task {task.name!r} failed: {result.err}")
    how = f"signal {result.signal}" if result.signal else f"exit code {result.exit_code}"
    print(
        f"==> task {task.name!r} finished with {how}"
        + (" (OOM killed)" if result.oom_killed else ""),
        file=sys.stderr,
    )
    if result.signal:
        return 128 + result.signal
    return result.exit_code


def _wait(run: Any, interrupts: Interrupts, stop_after: float | None = None) -> Any:
    """WaitTask in a thread; the first Ctrl-C (or `stop_after` seconds) -> StopTask with
    the job's kill settings, the second Ctrl-C -> StopTask with no grace time."""
    deadline = None if stop_after is None else time.monotonic() + stop_after
    box: dict[str, Any] = {}
    done = threading.Event()

    def wait() -> None:
        try:
            box["result"] = run.wait()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc
        finally:
            done.set()

    def stop(timeout: float | None) -> None:
        try:
            run.stop(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - reported, the wait goes on
            print(f"nomad-ctr: stop failed: {exc}", file=sys.stderr)

    threading.Thread(target=wait, daemon=True).start()
    handled = 0
    while not done.wait(0.1):
        requested = interrupts.count
        if deadline is not None and time.monotonic() >= deadline:
            requested = max(requested, 1)
        while handled < min(requested, 2):
            handled += 1
            if handled == 1:
                sig = run.kill_signal or "SIGTERM"
                print(
                    f"\n==> stopping the task ({sig}, up to {run.kill_timeout:g}s; Ctrl-C again to kill it now)",
                    file=sys.stderr,
                    flush=True,
                )
                threading.Thread(target=stop, args=(None,), daemon=True).start()
            else:
                print("\n==> killing the task", file=sys.stderr, flush=True)
                threading.Thread(target=stop, args=(0.0,), daemon=True).start()
    if "error" in box:
        raise box["error"]
    return box["result"]
