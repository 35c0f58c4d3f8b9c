"""The container verbs: pull, run, ps, stats, exec, rm, logs (thin layers over the API)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any

from nomad_ctr.cli.interrupts import Interrupts
from nomad_ctr.cli.main import CliError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from nomad_ctr import Client, PullProgress

__all__ = ["cmd_exec", "cmd_logs", "cmd_ps", "cmd_pull", "cmd_rm", "cmd_run", "cmd_stats"]


def _client(args: argparse.Namespace) -> Client:
    from nomad_ctr import Client

    return Client(address=args.address, namespace=args.namespace)


# ---- pull ------------------------------------------------------------------------------


def _read_password() -> str:
    if sys.stdin.isatty():
        raise CliError(
            "--password-stdin: pipe the password in (e.g. `cat pw | nomad-ctr pull ...`)", 2
        )
    password = sys.stdin.read().rstrip("\r\n")
    if not password:
        raise CliError("--password-stdin: stdin was empty", 2)
    return password


class _PullBar:
    """A rich progress bar on stderr fed by PullProgress snapshots: only on a terminal,
    and transient (the digest line printed afterwards is what stays)."""

    def __init__(self, ref: str, enabled: bool) -> None:
        self.ref = ref
        self.progress: Any = None
        if not enabled:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        self.progress = _progress(console)
        self.task = self.progress.add_task(f"pull {ref}", total=None, layers="")
        self.progress.start()

    def update(self, p: PullProgress) -> None:
        if self.progress is None:
            return
        # no layer count before the manifest is read: "0/0 layers" would be a lie
        layers = f"{p.layers_done}/{len(p.layers)} layers" if p.layers else ""
        self.progress.update(self.task, completed=p.offset, total=p.total or None, layers=layers)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _progress(console: Console) -> Progress:
    """One line: `pull REF  bar  done/total  speed  n/m layers`. On a narrow terminal
    only the ref is cut short (with an ellipsis); the numbers never wrap."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TransferSpeedColumn,
    )
    from rich.table import Column
    from rich.text import Text

    class Clipped(ProgressColumn):
        # a wrappable table column is the one rich shrinks first; the text itself
        # is cut on one line rather than wrapped
        def render(self, task: Task) -> Text:
            return Text(task.description, no_wrap=True, overflow="ellipsis")

    def fixed() -> Column:
        return Column(no_wrap=True)

    return Progress(
        Clipped(),
        BarColumn(bar_width=20, table_column=fixed()),
        DownloadColumn(table_column=fixed()),
        TransferSpeedColumn(table_column=fixed()),
        TextColumn("{task.fields[layers]}", table_column=fixed()),
        console=console,
        transient=True,
    )


def _pull(
    client: Client, ref: str, *, auth: Any = None, timeout: float | None = None, quiet: bool = False
) -> Any:
    bar = _PullBar(ref, enabled=not quiet)
    try:
        return client.images.pull(ref, auth=auth, timeout=timeout, progress=bar.update)
    finally:
        bar.close()


def cmd_pull(args: argparse.Namespace) -> int:
    from nomad_ctr import Auth

    auth = None
    if args.password_stdin and not args.user:
        raise CliError("--password-stdin needs --user", 2)
    if args.user:
        if not args.password_stdin:
            raise CliError(
                "--user needs --password-stdin (passwords never go on the command line)", 2
            )
        auth = Auth(args.user, _read_password())
    with _client(args) as client:
        image = _pull(client, args.ref, auth=auth, timeout=args.timeout, quiet=args.quiet)
    print(f"{image.name} {getattr(image, 'digest', '')}".rstrip())
    return 0


# ---- run -------------------------------------------------------------------------------


def _copy_fifo(path: str, out: Any, done: threading.Event) -> threading.Thread:
    """Copy a FIFO the shim writes into `out` until `done` is set and it runs dry."""
    import select

    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def run() -> None:
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    if done.is_set():
                        return
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                out.write(chunk)
                out.flush()
        finally:
            os.close(fd)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def cmd_run(args: argparse.Namespace) -> int:
    from nomad_ctr import ContainerSpec, errors

    spec = ContainerSpec(env=dict(args.env)) if args.env else ContainerSpec()
    if args.args:
        spec = spec.replace(args=list(args.args))
    with _client(args) as client:
        if not client.images.exists(args.image):
            _pull(client, args.image)
        cid = args.name or f"run-{os.urandom(6).hex()}"
        container = client.containers.create(cid, args.image, spec=spec)
        if args.detach:
            try:
                container.start()
            except BaseException:
                container.delete(force=True)
                raise
            print(cid)
            return 0
        tmp = tempfile.mkdtemp(prefix="nomad-ctr-run-")
        done = threading.Event()
        try:
            fifos = [os.path.join(tmp, n) for n in ("stdout", "stderr")]
            for f in fifos:
                os.mkfifo(f, 0o600)
            copiers = [
                _copy_fifo(fifos[0], sys.stdout.buffer, done),
                _copy_fifo(fifos[1], sys.stderr.buffer, done),
            ]
            try:
                with Interrupts() as interrupts:
                    container.start(stdout=fifos[0], stderr=fifos[1])
                    status = _wait_interruptibly(container, interrupts)
            finally:
                done.set()
                for t in copiers:
                    t.join(2.0)
        except BaseException:
            try:
                container.delete(force=True) if args.rm else container.kill("SIGKILL")
            except errors.ContainerdError:
                pass
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if args.rm:
            container.delete(force=True)
        return status.exit_code if status.exit_code is not None else 1


def _wait_interruptibly(container: Any, interrupts: Interrupts) -> Any:
    """Wait in a thread; the first Ctrl-C sends SIGTERM, the second SIGKILL."""
    result: dict[str, Any] = {}
    done = threading.Event()

    def wait() -> None:
        try:
            result["status"] = container.wait()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=wait, daemon=True).start()
    sent = 0
    while not done.wait(0.1):
        while sent < min(interrupts.count, 2):
            sig = ("SIGTERM", "SIGKILL")[sent]
            sent += 1
            hint = "Ctrl-C again to force" if sig == "SIGTERM" else "Ctrl-C again to give up"
            print(f"\nnomad-ctr: sending {sig} ({hint})", file=sys.stderr, flush=True)
            container.kill(sig)
    if "error" in result:
        raise result["error"]
    return result["status"]


# ---- ps, stats, exec, rm, logs ---------------------------------------------------------------


def cmd_ps(args: argparse.Namespace) -> int:
    from nomad_ctr import errors

    rows = [("ID", "IMAGE", "STATE", "PID")]
    with _client(args) as client:
        for c in sorted(client.containers.list(), key=lambda c: c.id):
            try:
                st = c.status()
                state = st.state.value + (f" ({st.exit_code})" if st.exit_code is not None else "")
                pid = str(st.pid or "-")
            except errors.NotFound:
                state, pid = "created", "-"
            rows.append((c.id, c.image, state, pid))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[3])
    return 0


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    if n >= 2**62:  # cgroup v1 reports "no limit" as a page-rounded 2^63
        return "unlimited"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_stats(args: argparse.Namespace) -> int:
    import dataclasses

    with _client(args) as client:
        m = client.containers.get(args.id).stats()
    if args.json:
        doc = dataclasses.asdict(m)
        print(json.dumps(doc, default=str, indent=2, sort_keys=True))
        return 0
    cpu = f"{m.cpu.total_ns / 1e9:.3f}s" if m.cpu.total_ns is not None else "-"
    print(f"cpu        {cpu} total (user {_ns(m.cpu.user_ns)}, system {_ns(m.cpu.system_ns)})")
    print(
        f"memory     {_size(m.memory.usage)} of {_size(m.memory.limit)} (rss {_size(m.memory.rss)}, "
        f"cache {_size(m.memory.cache)})"
    )
    print(
        f"pids       {m.pids.current if m.pids.current is not None else '-'}"
        + (f" of {m.pids.limit}" if m.pids.limit else "")
    )
    return 0


def _ns(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e9:.3f}s"


def cmd_exec(args: argparse.Namespace) -> int:
    if not args.args:
        raise CliError("exec: give the command to run, e.g. `nomad-ctr exec ID -- ls /`", 2)
    with _client(args) as client:
        result = client.containers.get(args.id).exec(list(args.args))
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.flush()
    return result.exit_code


def cmd_rm(args: argparse.Namespace) -> int:
    from nomad_ctr import errors

    failed = 0
    with _client(args) as client:
        for cid in args.ids:
            try:
                client.containers.get(cid).delete(force=args.force)
                print(cid)
            except errors.ContainerdError as exc:
                print(f"nomad-ctr: rm {cid}: {' '.join(str(exc).split())}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def cmd_logs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        c = client.containers.get(args.id)
        sys.stdout.buffer.write(c.logs("stdout"))
        sys.stdout.flush()
        sys.stderr.buffer.write(c.logs("stderr"))
    return 0
