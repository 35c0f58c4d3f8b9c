"""Raw bindings to libgobridge (the "hazmat" layer). Only nomad_ctr's API imports this.

``call(method, request)`` runs one method of gobridge/CONTRACT.md and returns its JSON
answer as a dict, or raises the nomad_ctr.errors class for the status.
"""

from nomad_ctr.errors import BridgeError

from ._loader import check_handshake, info, is_loaded, library_path
from .calls import Handle, Op, call, status_name, timeout_ms

__all__ = [
    "BridgeError",
    "Handle",
    "Op",
    "call",
    "check_handshake",
    "info",
    "is_loaded",
    "library_path",
    "status_name",
    "timeout_ms",
]
