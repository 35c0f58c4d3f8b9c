"""Parsers for the value syntaxes used in driver and task configs, and ConfigError.

Error text (reliability-security.md §3): one line,
`invalid task config: <field path>: <value quoted, escaped, cut to 80 chars> <rule>`.
Values of secret fields are never shown.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

__all__ = [
    "CAPABILITIES",
    "ConfigError",
    "is_hostname",
    "normalize_capability",
    "parse_duration",
    "parse_size",
    "show",
]

_NO_VALUE = object()
_SHOW_MAX = 80


def _escape(text: str, quoted: bool = True) -> str:
    out = []
    for ch in text:
        if quoted and ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def show(value: Any) -> str:
    """A value for an error message: strings quoted and escaped, cut to 80 characters."""
    if isinstance(value, str):
        cut = value[:_SHOW_MAX]
        return '"' + _escape(cut) + '"' + ("..." if len(value) > _SHOW_MAX else "")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = str(value)
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            text = str(value)
    text = _escape(text, quoted=False)
    return text[:_SHOW_MAX] + ("..." if len(text) > _SHOW_MAX else "")


class ConfigError(ValueError):
    """A config value broke a rule. `str()` is the whole one-line message."""

    def __init__(
        self, scope: str, field: str, rule: str, value: Any = _NO_VALUE
    ) -> None:
        self.scope = scope
        self.field = field
        self.rule = rule
        shown = "" if value is _NO_VALUE else show(value) + " "
        super().__init__(f"invalid {scope} config: {field}: {shown}{rule}")


# ---- durations (Go syntax) ----------------------------------------------------------------

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration syntax ("300ms", "5m", "1h30m") in seconds.

    Raises ValueError with the rule broken; signs are not accepted (no negative waits)."""
    if not text:
        raise ValueError("is not a duration (e.g. \"30s\", \"5m\", \"1h30m\")")
    if text[0] in "+-":
        raise ValueError("must not be signed (use e.g. \"5m\")")
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            raise ValueError("is not a duration (e.g. \"30s\", \"5m\", \"1h30m\")")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total


# ---- byte sizes -----------------------------------------------------------------------------

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kKmMgGtTpP])?[iI]?[bB]?")
_MULT = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """Docker-style sizes: "64k", "128m", "1g", "1.5GiB", "1048576" (binary multiples)."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise ValueError('is not a size (e.g. "64k", "128m", "1g" or a number of bytes)')
    unit = m.group(2).lower() if m.group(2) else None
    return int(Decimal(m.group(1)) * _MULT[unit])


# ---- capabilities -------------------------------------------------------------------------

CAPABILITIES = frozenset(
    "CAP_" + name
    for name in (
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
        "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK "
        "IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN "
        "SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE "
        "AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND "
        "AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE"
    ).split()  # noqa: SIM905 - reads better than 41 quoted names
)


def normalize_capability(name: str) -> str:
    """`net_admin`, `NET_ADMIN`, `cap_net_admin` -> `CAP_NET_ADMIN`; `all` -> `ALL`."""
    upper = name.upper()
    if upper == "ALL":
        return "ALL"
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAPABILITIES:
        raise ValueError("is not a Linux capability (e.g. \"NET_ADMIN\")")
    return full


# ---- hostnames ------------------------------------------------------------------------------

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def is_hostname(name: str, max_len: int = 63) -> bool:
    """RFC 1123 host name of at most `max_len` characters (dots allowed)."""
    if not name or len(name) > max_len:
        return False
    return all(_LABEL.fullmatch(label) and len(label) <= 63 for label in name.split("."))
