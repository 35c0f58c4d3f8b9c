"""Image reference parsing and normalisation (docker.io/library/x:latest).

The rules follow the distribution reference grammar: an optional registry host, a
lower-case path, then an optional tag and an optional digest. A reference without a
tag or digest means `:latest` (never "all tags").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nomad_ctr._invalid import invalid

__all__ = ["ImageRef", "normalize_ref", "parse_ref", "registry_host"]

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_MAX_NAME = 255


@dataclass(frozen=True)
class ImageRef:
    registry: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.path}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _looks_like_host(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def parse_ref(ref: str, field: str = "ref") -> ImageRef:
    """Parse and normalise `ref`; InvalidArgument (naming `field`) if it is malformed."""
    if not isinstance(ref, str):
        raise invalid(field, ref, "an image reference must be a string")
    if not ref or ref != ref.strip():
        raise invalid(field, ref, "empty or surrounded by whitespace")
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise invalid(field, ref, f"bad digest {digest!r} (want algorithm:hex)")
    registry = DEFAULT_REGISTRY
    first, sep, remainder = rest.partition("/")
    if sep and _looks_like_host(first):
        if not _HOST_RE.match(first):
            raise invalid(field, ref, f"bad registry host {first!r}")
        registry, rest = first, remainder
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise invalid(field, ref, f"bad tag {tag!r}")
    if not _PATH_RE.match(rest):
        raise invalid(
            field, ref, "bad repository name (lower-case letters, digits and . _ - / only)"
        )
    if registry == DEFAULT_REGISTRY and "/" not in rest:
        rest = f"library/{rest}"
    if len(registry) + 1 + len(rest) > _MAX_NAME:
        raise invalid(field, ref, f"repository name longer than {_MAX_NAME} characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry=registry, path=rest, tag=tag, digest=digest)


def normalize_ref(ref: str, field: str = "ref") -> str:
    """`busybox` -> `docker.io/library/busybox:latest`; keeps explicit tags and digests."""
    return str(parse_ref(ref, field))


def registry_host(ref: str) -> str:
    """The host credentials for `ref` may be sent to (docker.io -> registry-1.docker.io)."""
    registry = parse_ref(ref).registry.lower()
    return DOCKER_HUB_HOST if registry == DEFAULT_REGISTRY else registry
