"""Signals given by name ("SIGTERM", "TERM", "term"), number (15) or signal.Signals."""

from __future__ import annotations

import signal as _signal

from nomad_ctr._invalid import invalid

__all__ = ["SignalLike", "parse_signal"]

SignalLike = int | str | _signal.Signals

# Real-time signals are valid to send to a container; Python's enum lacks most of them.
_SIGRTMIN = getattr(_signal, "SIGRTMIN", 34)
_SIGRTMAX = getattr(_signal, "SIGRTMAX", 64)


def parse_signal(sig: SignalLike, field: str = "signal") -> int:
    """Return the signal number; InvalidArgument naming `field` if it is not a signal."""
    if isinstance(sig, bool):
        raise invalid(field, sig, "a signal is a name or a number, not a bool")
    if isinstance(sig, int):
        number = int(sig)
    elif isinstance(sig, str):
        text = sig.strip().upper()
        if text.isdigit():
            number = int(text)
        else:
            name = text if text.startswith("SIG") else f"SIG{text}"
            found = _by_name(name)
            if found is None:
                raise invalid(field, sig, "unknown signal name")
            number = found
    else:
        raise invalid(field, sig, "a signal is a name, a number or signal.Signals")
    if not 1 <= number <= _SIGRTMAX:
        raise invalid(field, sig, f"signal numbers run from 1 to {_SIGRTMAX}")
    return number


def _by_name(name: str) -> int | None:
    member = getattr(_signal.Signals, name, None)
    if isinstance(member, _signal.Signals):
        return int(member)
    # SIGRTMIN+3, SIGRTMAX-1
    for base_name, base in (("SIGRTMIN", _SIGRTMIN), ("SIGRTMAX", _SIGRTMAX)):
        if name.startswith(base_name):
            rest = name[len(base_name) :]
            if not rest:
                return base
            if rest[0] in "+-" and rest[1:].isdigit():
                value = base + int(rest) if rest[0] == "+" else base - int(rest[1:])
                if _SIGRTMIN <= value <= _SIGRTMAX:
                    return value
    return None
