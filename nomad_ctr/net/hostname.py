"""Hostname validation and a safe default hostname from a container name."""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63  # also the kernel's limit for a UTS hostname is 64 incl. NUL
MAX_NAME = 253

_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_INVALID_CHARS = re.compile(r"[^a-z0-9-]+")


def is_valid_hostname(name: str) -> bool:
    """RFC 1123 host name: dot-separated labels of letters, digits and '-'."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        return False
    return all(_LABEL_RE.match(label) for label in name.split("."))


def validate_hostname(name: str, field: str = "hostname") -> str:
    """Return ``name`` or raise ValueError naming ``field`` and the value."""
    if not is_valid_hostname(name):
        raise ValueError(
            f"{field}: not a valid host name (letters, digits, '-' and '.', "
            f"labels of 1-63 characters not starting or ending with '-'): {name!r}"
        )
    return name


def default_hostname(container_name: str) -> str:
    """A valid single-label hostname of at most 63 characters for a container.

    Characters not allowed in a host name become '-' and the result is
    lower-cased. A name longer than 63 characters is cut and gets an
    8-hex-digit hash of the full name appended, so two long names sharing a
    prefix (e.g. "<task>-<alloc id>") stay distinct.
    """
    if not isinstance(container_name, str) or not container_name:
        raise ValueError(f"container_name: must be a non-empty string: {container_name!r}")
    cleaned = _INVALID_CHARS.sub("-", container_name.lower()).strip("-")
    if cleaned and len(cleaned) <= MAX_LABEL:
        return cleaned
    digest = hashlib.sha256(container_name.encode()).hexdigest()[:8]
    head = cleaned[: MAX_LABEL - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}" if head else digest
