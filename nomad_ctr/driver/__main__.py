"""`containerd-driver`: the process the Nomad agent launches (go-plugin, §2).

Order matters: check the magic cookie, start the gRPC server on a unix socket in a
private directory, and only then print the handshake line; afterwards stdout is
pointed at stderr so nothing else can reach it. SIGINT is ignored (a Ctrl-C in the
agent's terminal must not kill plugins); SIGTERM and GRPCController.Shutdown stop
the server and exit promptly.
"""

from __future__ import annotations

import os

# grpc's C core would print unstructured lines on stderr; only errors, please
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grp
import logging
import shutil
import signal
import sys
import tempfile
import threading
from types import TracebackType
from typing import Any

from nomad_ctr import __version__
from nomad_ctr.driver.logging import setup_logging

NOT_A_PROGRAM = (
    "containerd-driver is a Nomad task driver plugin; the Nomad agent starts it.\n"
    "Put it in the agent's plugin_dir and add a plugin \"containerd-driver\" { config { ... } }\n"
    "block to the agent configuration; running it by hand does nothing.\n"
)

log = logging.getLogger("nomad_ctr.driver.main")


def _load_driver_service() -> Any | None:
    """The Driver servicer (nomad_ctr.driver.service.DriverService) if it exists yet."""
    try:
        from nomad_ctr.driver.service import DriverService  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name != "nomad_ctr.driver.service":
            raise
        log.warning("no Driver service available; serving BasePlugin only")
        return None
    return DriverService()


def _socket_dir() -> str:
    parent = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None
    return tempfile.mkdtemp(prefix="nomad-ctr-", dir=parent)  # mode 0700


def _apply_socket_group(directory: str, path: str) -> None:
    group = os.environ.get("PLUGIN_UNIX_SOCKET_GROUP")
    if not group:
        return
    gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    os.chown(directory, -1, gid)
    os.chmod(directory, 0o750)
    os.chown(path, -1, gid)
    os.chmod(path, 0o660)


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    log.error("uncaught exception: %s", exc, exc_info=(exc_type, exc, tb))


def _install_hooks(shutdown: threading.Event) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: shutdown.set())
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda a: _log_uncaught(a.exc_type, a.exc_value, a.exc_traceback)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("NOMAD_PLUGIN_MAGIC_COOKIE") != (
        "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255"
    ):
        sys.stderr.write(NOT_A_PROGRAM)
        return 1
    versions = [v.strip() for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "2").split(",")]
    if "2" not in versions:
        sys.stderr.write(
            f"containerd-driver speaks plugin protocol 2; the host offered {versions}\n"
        )
        return 1

    setup_logging()
    from nomad_ctr.driver.plugin import build_server, handshake_line

    directory = _socket_dir()
    path = os.path.join(directory, "plugin.sock")
    shutdown = threading.Event()
    _install_hooks(shutdown)
    try:
        server = build_server(_load_driver_service())
        server.bind_unix(path)
        server.start()
        _apply_socket_group(directory, path)
    except Exception as exc:
        log.error("could not start the plugin server: %s", exc, exc_info=exc)
        shutil.rmtree(directory, ignore_errors=True)
        return 1

    try:
        multiplex = bool(os.environ.get("PLUGIN_MULTIPLEX_GRPC"))
        os.write(1, handshake_line("unix", path, multiplex).encode())
    except OSError as exc:
        log.error("could not write the handshake line: %s", exc)
        server.stop(0)
        shutil.rmtree(directory, ignore_errors=True)
        return 1
    # from now on nothing may reach the host through stdout
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    log.info("plugin started", extra={"version": __version__, "socket": path, "pid": os.getpid()})

    while not shutdown.is_set() and not server.shutdown_requested.wait(0.5):
        pass

    log.info("plugin stopping")
    server.stop(grace=0.3)
    shutil.rmtree(directory, ignore_errors=True)
    for handler in logging.getLogger("nomad_ctr").handlers:
        handler.flush()
    # worker threads may be parked in long calls (WaitTask): do not wait for them
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
