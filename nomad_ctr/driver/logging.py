"""hclog-style JSON log lines on stderr, the format Nomad's plugin host parses (§2.6).

    {"@level":"info","@message":"...","@module":"driver.plugin","@timestamp":
     "2026-01-02T03:04:05.123456+00:00","task_id":"..."}

Built on the stdlib logging module: `log.info("started", extra={"task_id": tid})`.
Rules the host imposes: @level/@message/@timestamp are JSON strings, the level is
`warn` (never `warning`), the timestamp has exactly 6 fractional digits and an offset.
Secrets never reach the stream: keys that look secret are redacted, and values
registered with `register_secret` are masked wherever they appear.
After an agent crash our stderr pipe may be gone (EPIPE): the handler then drops lines.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import datetime, timezone
from typing import IO, Any

__all__ = [
    "TRACE",
    "HclogFormatter",
    "RedactSecrets",
    "SafeStreamHandler",
    "get_logger",
    "level_name",
    "register_secret",
    "setup_logging",
]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

REDACTED = "<redacted>"
_SECRET_KEY_PARTS = ("password", "secret", "token", "credential", "auth")
_MIN_SECRET_LEN = 4
_MAX_LINE = 60 * 1024  # the host splits lines over 64 KiB and logs them raw

# LogRecord attributes that are not user "extra" key/values
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def level_name(levelno: int) -> str:
    """hclog level names; `warning` is not one of them."""
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    if levelno >= logging.DEBUG:
        return "debug"
    return "trace"


def _is_secret_key(key: str) -> bool:
    k = key.lower()
    return any(part in k for part in _SECRET_KEY_PARTS)


_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask `value` in every later log line (registry passwords from configs)."""
    if isinstance(value, str) and len(value) >= _MIN_SECRET_LEN:
        with _secrets_lock:
            _secrets.add(value)


def _mask(text: str) -> str:
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return "..."
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, dict):
        return {
            str(k): REDACTED if _is_secret_key(str(k)) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(v, depth + 1) for v in value]
    return value


class RedactSecrets(logging.Filter):
    """Masks registered secrets in the message and redacts secret-looking extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a bad %-format must not kill logging
            msg = str(record.msg)
        record.msg, record.args = _mask(msg), None
        for key in list(vars(record)):
            if key in _RESERVED:
                continue
            value = getattr(record, key)
            setattr(record, key, REDACTED if _is_secret_key(key) else _redact(value))
        return True


def _timestamp(created: float) -> str:
    # isoformat with timespec="microseconds" always yields 6 digits and "+00:00"
    return datetime.fromtimestamp(created, tz=timezone.utc).isoformat(timespec="microseconds")


def _module(name: str) -> str:
    return name.removeprefix("nomad_ctr.").removeprefix("nomad_ctr") or "containerd-driver"


class HclogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "@level": level_name(record.levelno),
            "@message": record.getMessage(),
            "@module": _module(record.name),
            "@timestamp": _timestamp(record.created),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key if not key.startswith("@") else "_" + key] = value
        if record.exc_info:
            entry["error"] = _mask(self.formatException(record.exc_info))
        line = json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))
        if len(line) > _MAX_LINE:
            entry = {k: entry[k] for k in ("@level", "@module", "@timestamp")}
            entry["@message"] = record.getMessage()[:4096] + " [truncated]"
            line = json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))
        return line


class SafeStreamHandler(logging.StreamHandler):
    """A stream handler that survives a closed pipe: after EPIPE it drops lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            self.stream.write(msg + "\n")
            self.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError, OSError):
            # stderr pipe gone (agent died; we may be reattached later): go quiet
            self.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives with the handler
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:  # never print tracebacks
        pass


_configured_handler: logging.Handler | None = None


def setup_logging(level: int | str | None = None, stream: IO[str] | None = None) -> logging.Handler:
    """Route the `nomad_ctr` logger tree (and grpc's) to hclog JSON on stderr.

    Level: `level`, else env NOMAD_CTR_LOG_LEVEL (trace/debug/info/warn/error), else debug
    (the Nomad agent filters by its own level)."""
    global _configured_handler
    if level is None:
        level = os.environ.get("NOMAD_CTR_LOG_LEVEL", "debug")
    if isinstance(level, str):
        level = {"trace": TRACE, "debug": logging.DEBUG, "info": logging.INFO,
                 "warn": logging.WARNING, "warning": logging.WARNING,
                 "error": logging.ERROR}.get(level.strip().lower(), logging.DEBUG)
    handler = SafeStreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(HclogFormatter())
    handler.addFilter(RedactSecrets())
    for name in ("nomad_ctr", "grpc"):
        lg = logging.getLogger(name)
        if _configured_handler is not None:
            lg.removeHandler(_configured_handler)
        lg.addHandler(handler)
        lg.propagate = False
    logging.getLogger("nomad_ctr").setLevel(level)
    logging.getLogger("grpc").setLevel(max(level, logging.INFO))
    _configured_handler = handler
    return handler


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith("nomad_ctr") else f"nomad_ctr.{name}")
