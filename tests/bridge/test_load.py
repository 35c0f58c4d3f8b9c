"""Loading, version handshake and the cdef/header agreement."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nomad_ctr
from nomad_ctr import errors
from nomad_ctr._bridge import _cdef, check_handshake

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_library_reports_package_version_and_abi(bridge) -> None:
    info = bridge.info()
    assert info["version"] == nomad_ctr.__version__
    assert info["abi"] == _cdef.ABI_VERSION == 1
    assert info["go"].startswith("go1.")
    assert info["containerd_client"].startswith("v2.")


def test_handshake_refuses_other_version_naming_both() -> None:
    info = {"version": "9.9.9", "abi": 1}
    with pytest.raises(errors.BridgeError) as exc:
        check_handshake(info, "0.1.0", "/x/libgobridge.so")
    assert "9.9.9" in str(exc.value) and "0.1.0" in str(exc.value)


def test_handshake_refuses_other_abi() -> None:
    with pytest.raises(errors.BridgeError, match="ABI 2"):
        check_handshake({"version": "0.1.0", "abi": 2}, "0.1.0", "/x/libgobridge.so")


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=60, check=False,
    )


def test_mismatched_library_is_refused_in_a_fresh_process(mismatched_library: Path) -> None:
    # One Go runtime per process: the mismatched library gets its own interpreter.
    proc = _run_python(
        """
        from nomad_ctr import _bridge, errors
        try:
            _bridge.call("debug.handles", {})
        except errors.BridgeError as exc:
            print("REFUSED", exc)
        """,
        NOMAD_CTR_GOBRIDGE_LIBRARY=str(mismatched_library),
    )
    assert proc.returncode == 0, proc.stderr
    assert "REFUSED" in proc.stdout
    assert "0.0.0-mismatch" in proc.stdout and nomad_ctr.__version__ in proc.stdout


def test_missing_library_gives_a_clear_bridge_error(tmp_path: Path) -> None:
    proc = _run_python(
        """
        from nomad_ctr import _bridge, errors
        try:
            _bridge.info()
        except errors.BridgeError as exc:
            print("MISSING", exc)
        """,
        NOMAD_CTR_GOBRIDGE_LIBRARY=str(tmp_path / "nope.so"),
    )
    assert "MISSING" in proc.stdout and "make gobridge" in proc.stdout, proc.stderr


def test_import_does_not_load_the_go_runtime() -> None:
    proc = _run_python(
        """
        import threading
        import nomad_ctr._bridge as b
        print(b.is_loaded(), threading.active_count())
        """
    )
    assert proc.stdout.split() == ["False", "1"], proc.stderr


def _decls(text: str) -> list[str]:
    """Function declarations normalised: no const, no parameter names, single spaces."""
    out = []
    for m in re.finditer(r"^(?:extern\s+)?([\w ]+?\**)\s*\b(gb_\w+)\s*\(([^)]*)\);", text, re.MULTILINE):
        ret, name, params = m.groups()
        types = []
        for p in params.split(","):
            p = p.replace("const ", "").strip()
            p = re.sub(r"\s*\*\s*", "*", p)
            p = re.sub(r"\s+\w+$", "", p) if p not in ("void",) else p
            p = re.sub(r"\*\w+$", "*", p)
            types.append(p)
        out.append(f"{ret.strip().replace(' ', '')} {name}({','.join(types)})")
    return sorted(out)


def test_cdef_lines_are_copied_from_gobridge_h() -> None:
    header = (ROOT / "gobridge" / "gobridge.h").read_text().splitlines()
    for line in _cdef.CDEF.strip().splitlines():
        if line.strip():
            assert line in header, f"_cdef line not in gobridge.h: {line!r}"
    assert _decls(_cdef.CDEF) == _decls("\n".join(header))
    assert f"#define GB_ABI_VERSION {_cdef.ABI_VERSION}" in header


def test_cdef_matches_the_header_cgo_generates() -> None:
    generated = ROOT / "nomad_ctr" / "_bridge" / "libgobridge.h"
    if not generated.exists():
        pytest.skip("no cgo header next to the library; `make gobridge` writes it")
    cgo = _decls(generated.read_text())
    ours = _decls(_cdef.CDEF)
    assert cgo == ours
