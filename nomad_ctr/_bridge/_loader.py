"""Load libgobridge.so once per process: lazy dlopen, version handshake, fork guard.

Loading starts the Go runtime (threads included), so it happens on first use, not at
import. A child created by fork() after the load cannot use Go; every use there raises
BridgeError instead of hanging.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import cffi  # type: ignore[import-untyped]

from nomad_ctr import __version__
from nomad_ctr.errors import BridgeError

from ._cdef import ABI_VERSION, CDEF

LIBRARY_ENV = "NOMAD_CTR_GOBRIDGE_LIBRARY"  # override the library path (tests, packagers)
_DEFAULT_PATH = Path(__file__).with_name("libgobridge.so")

ffi = cffi.FFI()
ffi.cdef(CDEF)

_lock = threading.Lock()
_lib: Any = None
_info: dict[str, Any] | None = None
_forked_after_load = False


def library_path() -> Path:
    return Path(os.environ.get(LIBRARY_ENV) or _DEFAULT_PATH)


def check_handshake(info: dict[str, Any], expected_version: str, path: Path | str) -> None:
    """Refuse a library built for another package version or ABI."""
    if info.get("abi") != ABI_VERSION:
        raise BridgeError(
            f"{path}: gobridge ABI {info.get('abi')!r} does not match the bindings' ABI "
            f"{ABI_VERSION}; rebuild with `make gobridge`"
        )
    if info.get("version") != expected_version:
        raise BridgeError(
            f"{path}: gobridge version {info.get('version')!r} does not match nomad_ctr "
            f"{expected_version!r}; rebuild with `make gobridge`"
        )


def _read_version(lib: Any) -> dict[str, Any]:
    out = ffi.new("uint8_t **")
    out_len = ffi.new("size_t *")
    status = lib.gb_version(out, out_len)
    try:
        raw = ffi.buffer(out[0], out_len[0])[:] if out[0] != ffi.NULL else b""
    finally:
        if out[0] != ffi.NULL:
            lib.gb_free(out[0])
    if status != 0:
        raise BridgeError(f"gb_version failed with status {status}: {raw!r}")
    info: dict[str, Any] = json.loads(raw)
    return info


def _check_usable() -> None:
    if _forked_after_load:
        raise BridgeError(
            "the Go bridge was loaded before this process was forked; Go cannot run in a "
            "forked child. Use subprocess or multiprocessing's 'spawn'/'forkserver' start method"
        )


def lib() -> Any:
    """The loaded library (loading and checking it on first use)."""
    _check_usable()
    if _lib is not None:
        return _lib
    return _load()


def _load() -> Any:
    global _lib, _info
    with _lock:
        _check_usable()
        if _lib is not None:
            return _lib
        path = library_path()
        if not path.exists():
            raise BridgeError(
                f"gobridge library not found at {path}; build it with `make gobridge` "
                f"(or set {LIBRARY_ENV})"
            )
        try:
            loaded = ffi.dlopen(str(path))
        except OSError as exc:
            raise BridgeError(f"cannot load gobridge library {path}: {exc}") from exc
        info = _read_version(loaded)
        check_handshake(info, __version__, path)
        _info, _lib = info, loaded
        return _lib


def info() -> dict[str, Any]:
    """gb_version's answer: version, abi, go, containerd_client."""
    lib()
    assert _info is not None
    return dict(_info)


def is_loaded() -> bool:
    return _lib is not None


def is_usable() -> bool:
    return not _forked_after_load


def _after_fork_in_child() -> None:
    global _lock, _forked_after_load
    # A thread of the parent may have held the lock at fork time; never wait on it here.
    _lock = threading.Lock()
    if _lib is not None:
        _forked_after_load = True


os.register_at_fork(after_in_child=_after_fork_in_child)
