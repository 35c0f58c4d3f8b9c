"""client.images: pull, get, list and remove images."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from nomad_ctr import errors
from nomad_ctr._invalid import invalid
from nomad_ctr.auth import Auth, redact
from nomad_ctr.client import DEFAULT, bridge, check_timeout
from nomad_ctr.refs import normalize_ref
from nomad_ctr.types import Image, PullProgress

if TYPE_CHECKING:
    from nomad_ctr.client import Client

__all__ = ["ImageCollection", "ProgressCallback"]

ProgressCallback = Callable[[PullProgress], None]

_PLATFORM_RE = re.compile(r"^[a-z0-9_]+/[a-z0-9_]+(?:/[a-z0-9_.]+)?$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+$")
# How often the calling thread looks at pull progress while the pull runs.
_PROGRESS_POLL = 0.2


class ImageCollection:
    def __init__(self, client: Client) -> None:
        self._client = client

    def pull(
        self,
        ref: str,
        *,
        auth: Auth | None = None,
        platform: str | None = None,
        timeout: float | None = None,
        progress: ProgressCallback | None = None,
        plain_http_hosts: Iterable[str] = (),
        snapshotter: str | None = None,
    ) -> Image:
        """Pull and unpack `ref` (a missing tag means :latest, never all tags).

        `progress` is called from the calling thread with a PullProgress each time the
        pull advances, and once more when it is done. An exception it raises cancels the
        pull and propagates. `timeout` None means no deadline.

        `platform` ("linux/arm64"; default the host's) picks that variant of a
        multi-platform image; an image without it, multi-platform or not, raises NotFound
        naming the platforms it has, and nothing is stored.
        """
        name = normalize_ref(ref)
        req: dict[str, Any] = {"ref": name, "unpack": True}
        if platform is not None:
            if not isinstance(platform, str) or not _PLATFORM_RE.match(platform):
                raise invalid("platform", platform, "must look like 'linux/amd64' or 'linux/arm/v7'")
            req["platform"] = platform
        password = None
        if auth is not None:
            if not isinstance(auth, Auth):
                raise invalid("auth", type(auth).__name__, "must be a nomad_ctr.Auth")
            if auth.applies_to(name):
                req["auth"] = auth.to_bridge()
                password = auth.password
        hosts = _check_hosts(plain_http_hosts)
        if hosts:
            req["plain_http_hosts"] = hosts
        if snapshotter is not None:
            req["snapshotter"] = snapshotter
        timeout = check_timeout(timeout)
        if progress is not None and not callable(progress):
            raise invalid("progress", progress, "must be callable")
        try:
            if progress is None:
                resp = self._client._call_blocking("images.pull", req, timeout=timeout)
            else:
                resp = self._pull_with_progress(req, timeout, progress)
        except errors.NotFound as exc:
            raise errors.ImageNotFound(redact(exc.message, password), code=exc.code) from None
        except errors.ContainerdError as exc:
            if password and password in str(exc):
                raise type(exc)(redact(exc.message, password), code=exc.code) from None
            raise
        return Image.from_json(resp)

    def _pull_with_progress(
        self, req: dict[str, Any], timeout: float | None, progress: ProgressCallback
    ) -> dict[str, Any]:
        b = bridge()
        op = b.Op()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = self._client._call("images.pull", req, timeout=timeout, op=op)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                outcome["error"] = exc

        worker = threading.Thread(target=run, name="nomad-ctr-pull", daemon=True)
        last: Any = None
        try:
            worker.start()
            while worker.is_alive():
                snap = op.poll(_PROGRESS_POLL)
                if snap and snap != last:
                    last = snap
                    progress(PullProgress.from_json(snap))
            if "error" in outcome:
                raise outcome["error"]
            final = dict(op.poll(0) or last or {"ref": req["ref"], "layers": []}, done=True)
            if final != last:  # the caller always sees one done snapshot, and only one
                progress(PullProgress.from_json(final))
            resp: dict[str, Any] = outcome["value"]
            return resp
        except BaseException:
            op.cancel()
            worker.join()
            raise
        finally:
            op.close()

    def get(self, ref: str, *, timeout: float | None = DEFAULT) -> Image:
        """The image `ref`; errors.ImageNotFound if it is not here."""
        name = normalize_ref(ref)
        try:
            return Image.from_json(self._client._call("images.get", {"ref": name}, timeout=timeout))
        except errors.NotFound as exc:
            if isinstance(exc, errors.ImageNotFound):
                raise
            raise errors.ImageNotFound(exc.message, code=exc.code) from None

    def exists(self, ref: str, *, timeout: float | None = DEFAULT) -> bool:
        try:
            self.get(ref, timeout=timeout)
        except errors.ImageNotFound:
            return False
        return True

    def list(self, *, filters: Iterable[str] = (), timeout: float | None = DEFAULT) -> list[Image]:
        """All images in the namespace, or those matching containerd filter strings."""
        if isinstance(filters, str):
            raise invalid("filters", filters, "must be a list of filter strings")
        req: dict[str, Any] = {}
        flist = [str(f) for f in filters]
        if flist:
            req["filters"] = flist
        resp = self._client._call("images.list", req, timeout=timeout)
        return [Image.from_json(d) for d in resp.get("images") or ()]

    def remove(self, ref: str, *, sync: bool = False, timeout: float | None = DEFAULT) -> None:
        """Remove the image record; content is garbage collected (now if `sync`)."""
        name = normalize_ref(ref)
        try:
            self._client._call("images.remove", {"ref": name, "sync": bool(sync)}, timeout=timeout)
        except errors.NotFound as exc:
            if isinstance(exc, errors.ImageNotFound):
                raise
            raise errors.ImageNotFound(exc.message, code=exc.code) from None


def _check_hosts(hosts: Iterable[str]) -> list[str]:
    if isinstance(hosts, str):
        raise invalid("plain_http_hosts", hosts, "must be a list of host[:port] names")
    out = []
    for i, host in enumerate(hosts):
        if not isinstance(host, str) or not host or not _HOST_RE.match(host):
            raise invalid(f"plain_http_hosts[{i}]", host, "must be a host or host:port")
        out.append(host)
    return out

