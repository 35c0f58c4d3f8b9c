"""One way to say "this argument is wrong": errors.InvalidArgument naming field and value."""

from __future__ import annotations

from typing import Any

from nomad_ctr import errors

_MAX_VALUE_REPR = 120


def invalid(field: str, value: Any, why: str) -> errors.InvalidArgument:
    """Build (not raise) an InvalidArgument that names the field and shows the value."""
    shown = repr(value)
    if len(shown) > _MAX_VALUE_REPR:
        shown = shown[: _MAX_VALUE_REPR - 3] + "..."
    return errors.InvalidArgument(f"{field}={shown}: {why}")
