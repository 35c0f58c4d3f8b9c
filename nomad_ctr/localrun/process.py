"""Start a go-plugin plugin process the way the Nomad agent does (fact sheet §2, §3.1):
exec with the agent's environment plus the magic cookie and protocol variables, read
the one handshake line from stdout, keep draining stdout, and turn the plugin's hclog
JSON lines on stderr into Python log records.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "MAGIC_COOKIE_KEY",
    "MAGIC_COOKIE_VALUE",
    "Handshake",
    "PluginProcess",
    "PluginStartError",
    "default_plugin_command",
    "parse_handshake",
]

MAGIC_COOKIE_KEY = "NOMAD_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255"
PLUGIN_ENV = {
    MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
    "PLUGIN_PROTOCOL_VERSIONS": "2",
    "PLUGIN_MIN_PORT": "10000",
    "PLUGIN_MAX_PORT": "25000",
}
START_TIMEOUT = 60.0  # go-plugin's default wait for the handshake line

_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

plugin_log = logging.getLogger("nomad_ctr.localrun.plugin")


class PluginStartError(RuntimeError):
    """The plugin could not be started or answered the handshake wrongly."""


@dataclass(frozen=True)
class Handshake:
    core_version: int
    app_version: int
    network: str  # "unix" | "tcp"
    address: str
    protocol: str


def parse_handshake(line: str) -> Handshake:
    """Validate a go-plugin handshake line as the host does (§2.2)."""
    fields = line.strip().split("|")
    if len(fields) < 4:
        raise PluginStartError(f"unrecognized remote plugin message: {line.strip()[:200]!r}")
    try:
        core, app = int(fields[0]), int(fields[1])
    except ValueError:
        raise PluginStartError(
            f"bad protocol versions in handshake: {line.strip()[:200]!r}"
        ) from None
    if core != 1:
        raise PluginStartError(f"core protocol version {core} is not 1")
    if app != 2:
        raise PluginStartError(f"plugin speaks app protocol {app}; Nomad offers only 2")
    network, address = fields[2], fields[3]
    if network not in ("unix", "tcp"):
        raise PluginStartError(f"unsupported network {network!r} in handshake")
    protocol = fields[4] if len(fields) > 4 and fields[4] else "netrpc"
    if protocol != "grpc":
        raise PluginStartError(f"plugin protocol {protocol!r}; Nomad allows only grpc")
    if network == "unix" and not address.startswith("/"):
        raise PluginStartError(f"unix socket path {address!r} is not absolute")
    return Handshake(core, app, network, address, protocol)


def default_plugin_command() -> list[str]:
    """$NOMAD_CTR_DRIVER_PLUGIN, the installed `containerd-driver`, or this Python's
    `-m nomad_ctr.driver`."""
    explicit = os.environ.get("NOMAD_CTR_DRIVER_PLUGIN")
    if explicit:
        return [explicit]
    script = shutil.which("containerd-driver")
    if script:
        return [script]
    return [sys.executable, "-m", "nomad_ctr.driver"]


class PluginProcess:
    """A running plugin process after a good handshake."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        handshake: Handshake,
        stderr_tail: collections.deque[str],
    ) -> None:
        self.proc = proc
        self.handshake = handshake
        self._stderr_tail = stderr_tail

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return self.handshake.address

    def stderr_tail(self) -> list[str]:
        """The last lines the plugin wrote on stderr (raw), for error messages."""
        return list(self._stderr_tail)

    @classmethod
    def start(
        cls,
        command: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> PluginProcess:
        argv = list(command or default_plugin_command())
        full_env = dict(os.environ if env is None else env)
        full_env.update(PLUGIN_ENV)  # appended last in Nomad, so they win
        try:
            proc = subprocess.Popen(
                argv,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
            )
        except OSError as exc:
            raise PluginStartError(
                f"cannot start plugin {argv[0]!r}: {exc.strerror or exc}"
            ) from None

        lines: queue.Queue[str | None] = queue.Queue()
        tail: collections.deque[str] = collections.deque(maxlen=20)
        threading.Thread(
            target=_read_stdout, args=(proc, lines), name="plugin-stdout", daemon=True
        ).start()
        stderr_thread = threading.Thread(
            target=_read_stderr,
            args=(proc, tail, os.path.basename(argv[0])),
            name="plugin-stderr",
            daemon=True,
        )
        stderr_thread.start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            _kill(proc)
            raise PluginStartError(
                f"plugin {argv[0]!r} wrote no handshake within {timeout:g}s"
            ) from None
        if line is None:
            code = proc.wait()
            stderr_thread.join(1.0)
            detail = "; ".join(_message(ln) for ln in list(tail)[-3:])
            raise PluginStartError(
                f"plugin exited (status {code}) before we could connect"
                + (f": {detail}" if detail else "")
            )
        try:
            handshake = parse_handshake(line)
        except PluginStartError:
            _kill(proc)
            raise
        return cls(proc, handshake, tail)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self, grace: float = 2.0) -> int:
        """Wait up to `grace` seconds for the process to exit (after a controller
        Shutdown), then SIGKILL it, as go-plugin does."""
        code = self.wait(grace)
        if code is None:
            _kill(self.proc)
            code = self.proc.wait()
        return code


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _read_stdout(proc: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    first = True
    for raw in proc.stdout:  # later lines are read and discarded, as Nomad does
        if first:
            lines.put(raw.decode("utf-8", "replace"))
            first = False
    if first:
        lines.put(None)


def _message(line: str) -> str:
    try:
        doc = json.loads(line)
    except ValueError:
        return line.strip()
    if isinstance(doc, dict) and isinstance(doc.get("@message"), str):
        extra = doc.get("error")
        return doc["@message"] + (f": {extra}" if isinstance(extra, str) else "")
    return line.strip()


def _read_stderr(proc: subprocess.Popen[bytes], tail: collections.deque[str], name: str) -> None:
    assert proc.stderr is not None
    for raw in proc.stderr:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if not line:
            continue
        tail.append(line)
        level, message, fields = logging.DEBUG, line, {}
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("@message"), str):
            level = _LEVELS.get(str(doc.get("@level", "")).strip().lower(), logging.DEBUG)
            message = doc["@message"]
            fields = {k: v for k, v in doc.items() if not k.startswith("@")}
        if plugin_log.isEnabledFor(level):
            suffix = " ".join(f"{k}={v}" for k, v in fields.items())
            plugin_log.log(level, "%s: %s%s", name, message, f" {suffix}" if suffix else "")
