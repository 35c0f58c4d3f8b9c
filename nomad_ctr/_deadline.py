"""A deadline shared by the steps of one multi-call operation (run, exec)."""

from __future__ import annotations

import time

from nomad_ctr import errors


class Deadline:
    """`timeout` seconds from now; None means no deadline."""

    def __init__(self, timeout: float | None, what: str) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.what = what

    def remaining(self) -> float | None:
        """Seconds left (None = unbounded); raises errors.Timeout once passed."""
        if self._end is None:
            return None
        left = self._end - time.monotonic()
        if left <= 0:
            raise self.error()
        return left

    def cap(self, seconds: float) -> float:
        """min(seconds, remaining): for one bounded wait inside the operation."""
        left = self.remaining()
        return seconds if left is None else min(seconds, left)

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def error(self) -> errors.Timeout:
        return errors.Timeout(f"{self.what}: timed out after {self.timeout:g}s")
