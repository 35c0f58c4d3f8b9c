"""Errors raised by nomad_ctr.net."""

from __future__ import annotations

from typing import Any


class NetError(Exception):
    """Base class for networking errors."""


class NetnsError(NetError):
    """A network namespace could not be created, entered or removed."""


class CNIError(NetError):
    """A CNI plugin failed (or could not be run).

    ``plugin`` is the plugin type (binary name), ``command`` the CNI command
    (ADD/DEL/CHECK/VERSION), ``code`` the CNI error code (0 when the plugin gave
    no structured error) and ``msg``/``details`` what the plugin reported.
    """

    def __init__(
        self, plugin: str, command: str, msg: str, *, code: int = 0, details: str = ""
    ) -> None:
        self.plugin = plugin
        self.command = command
        self.code = code
        self.msg = msg
        self.details = details
        # Set by CNIRuntime.add: which plugin of the list failed, and the
        # result the chain had reached before it (what a rollback DEL needs).
        self.failed_index: int | None = None
        self.partial_result: dict[str, Any] | None = None
        text = f"CNI plugin {plugin!r} {command} failed"
        if code:
            text += f" (code {code})"
        text += f": {msg}"
        if details:
            text += f" ({details})"
        super().__init__(text)


class CNIPluginNotFound(CNIError):
    """The plugin binary is not in any CNI_PATH directory (so it never ran)."""
