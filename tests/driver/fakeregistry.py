"""A small HTTP server on 127.0.0.x posing as a registry, recording every request's
headers, so tests can see which credentials a pull sends where.

Modes:
  forward(upstream)   passes requests on to a real registry (e.g. 127.0.0.1:5000)
  challenge(header)   answers every request 401 with the given WWW-Authenticate
  hang()              accepts the request and never answers (until closed)
  serve()             serves a one-layer image of its own (fresh random content, so
                      containerd has none of its blobs and must download them)
  guard(redirect_blobs_to)
                      401 Basic without an Authorization header, else serves; blob
                      GETs are redirected (307) to another FakeRegistry, as registries
                      backed by object storage do
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import tarfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def synthetic_image() -> tuple[bytes, dict[str, bytes]]:
    """(manifest, blobs by digest): one layer holding /random.bin."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        payload = os.urandom(4096)
        info = tarfile.TarInfo("random.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    layer = gzip.compress(raw.getvalue())
    config = json.dumps({
        "architecture": "amd64" if os.uname().machine == "x86_64" else "arm64", "os": "linux",
        "config": {"Cmd": ["/random.bin"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw.getvalue())]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _digest(layer), "size": len(layer)}],
    }).encode()
    return manifest, {_digest(config): config, _digest(layer): layer}


class FakeRegistry:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Seen] = []
        self.mode = "challenge"
        self.upstream = ""
        self.redirect_blobs_to = ""
        self.manifest, self.blobs = b"", {}
        self.challenge_header = 'Basic realm="fake"'
        self._release = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                owner._handle(self)

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.address = f"{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def forward(self, upstream: str) -> FakeRegistry:
        self.mode, self.upstream = "forward", upstream
        return self

    def challenge(self, header: str) -> FakeRegistry:
        self.mode, self.challenge_header = "challenge", header
        return self

    def serve(self, image: tuple[bytes, dict[str, bytes]]) -> FakeRegistry:
        self.mode, (self.manifest, self.blobs) = "serve", image
        return self

    def guard(self, image: tuple[bytes, dict[str, bytes]], redirect_blobs_to: str = "") -> FakeRegistry:
        self.serve(image)
        self.mode, self.redirect_blobs_to = "guard", redirect_blobs_to
        return self

    def hang(self) -> FakeRegistry:
        self.mode = "hang"
        return self

    def authorizations(self) -> list[str]:
        with self._lock:
            return [r.headers["authorization"] for r in self.requests if "authorization" in r.headers]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(Seen(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}))
        if self.mode == "hang":
            self._release.wait(120)
            h.close_connection = True
            return
        if self.mode == "guard" and "authorization" in {k.lower() for k in h.headers}:
            if self.redirect_blobs_to and "/blobs/" in h.path and h.command == "GET":
                h.send_response(307)
                h.send_header("Location", f"http://{self.redirect_blobs_to}{h.path}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            self._serve(h)
            return
        if self.mode == "serve":
            self._serve(h)
            return
        if self.mode in ("challenge", "guard"):
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            h.send_response(401)
            h.send_header("WWW-Authenticate", self.challenge_header)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
            return
        self._forward(h)

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        body, kind = None, "application/octet-stream"
        if path == "/v2/":
            body, kind = b"{}", "application/json"
        elif "/manifests/" in path:
            body, kind = self.manifest, "application/vnd.oci.image.manifest.v1+json"
        elif "/blobs/" in path:
            body = self.blobs.get(path.rsplit("/", 1)[1])
        if body is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("Content-Type", kind)
        h.send_header("Docker-Content-Digest", _digest(body))
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _forward(self, h: BaseHTTPRequestHandler) -> None:
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}}
            conn.request(h.command, h.path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            h.send_response(resp.status)
            length = str(len(body))
            for k, v in resp.getheaders():
                if k.lower() == "content-length" and h.command == "HEAD":
                    length = v  # a HEAD answer carries the size of what GET would send
                elif k.lower() not in _HOP_BY_HOP:
                    h.send_header(k, v)
            h.send_header("Content-Length", length)
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)
        finally:
            conn.close()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
