"""Registry credentials, kept out of every repr, log line and error."""

from __future__ import annotations

from dataclasses import dataclass, field

from nomad_ctr import refs
from nomad_ctr._invalid import invalid

__all__ = ["Auth", "redact"]

_REDACTED = "***"


@dataclass(frozen=True)
class Auth:
    """Username and password (or token) for one registry.

    `registry` optionally pins the credentials to one host ("127.0.0.1:5001",
    "docker.io"); they are then only sent when the reference being pulled lives there.
    Without it they go to the registry of the reference being pulled, and never to any
    other host (the bridge enforces that too).
    """

    username: str
    password: str = field(repr=False)
    registry: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.username, str) or not self.username:
            raise invalid("auth.username", self.username, "must be a non-empty string")
        if not isinstance(self.password, str):
            # Do not echo the value: it is a secret even when it has the wrong type.
            raise invalid("auth.password", _REDACTED, "must be a string")
        if self.registry is not None and (not isinstance(self.registry, str) or not self.registry):
            raise invalid("auth.registry", self.registry, "must be a non-empty host name or None")

    def __repr__(self) -> str:
        extra = f", registry={self.registry!r}" if self.registry else ""
        return f"Auth(username={self.username!r}, password='{_REDACTED}'{extra})"

    __str__ = __repr__

    def applies_to(self, ref: str) -> bool:
        """True if these credentials may be sent for pulling `ref`."""
        if self.registry is None:
            return True
        return _host_for(self.registry) == refs.registry_host(ref)

    def to_bridge(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


def _host_for(registry: str) -> str:
    registry = registry.lower()
    for prefix in ("https://", "http://"):
        registry = registry.removeprefix(prefix)
    registry = registry.rstrip("/")
    if registry in (refs.DEFAULT_REGISTRY, "index.docker.io", refs.DOCKER_HUB_HOST):
        return refs.DOCKER_HUB_HOST
    return registry


def redact(text: str, *secrets: str | None) -> str:
    """Replace every occurrence of each non-empty secret in `text`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text
