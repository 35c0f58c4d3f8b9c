"""The package surface: cheap import, re-exports, argument checks made before any bridge call."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import nomad_ctr
from nomad_ctr import errors
from nomad_ctr._deadline import Deadline
from nomad_ctr.client import check_identifier, check_timeout
from nomad_ctr.logs import LogFiles, state_dir

pytestmark = pytest.mark.unit


def test_import_does_not_load_the_bridge() -> None:
    code = (
        "import sys, nomad_ctr; "
        "print('nomad_ctr._bridge' in sys.modules, 'cffi' in sys.modules, 'grpc' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_public_names_exist() -> None:
    for name in nomad_ctr.__all__:
        assert hasattr(nomad_ctr, name), name
    assert nomad_ctr.__version__ == "0.1.0"


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "-lead", "trail-", "a..b", "x" * 77, 5, None])
def test_identifiers(bad) -> None:
    with pytest.raises(errors.InvalidArgument, match="^id="):
        check_identifier(bad, "id")


def test_identifier_ok() -> None:
    assert check_identifier("nomad-ctr.test_1", "id") == "nomad-ctr.test_1"


def test_client_rejects_bad_namespace_and_timeout_before_connecting() -> None:
    # Both fail on argument checks, so no socket is needed at this address.
    with pytest.raises(errors.InvalidArgument, match="^namespace="):
        nomad_ctr.Client(address="/nonexistent.sock", namespace="bad/ns")
    with pytest.raises(errors.InvalidArgument, match="^timeout="):
        nomad_ctr.Client(address="/nonexistent.sock", timeout=-1)


@pytest.mark.parametrize("bad", [0, -1, "5", float("nan"), True])
def test_check_timeout(bad) -> None:
    with pytest.raises(errors.InvalidArgument, match="^timeout="):
        check_timeout(bad)
    assert check_timeout(None) is None and check_timeout(2) == 2.0


def test_deadline() -> None:
    assert Deadline(None, "x").remaining() is None
    d = Deadline(0.01, "op")
    assert d.cap(5.0) <= 0.01
    time.sleep(0.02)
    assert d.expired()
    with pytest.raises(errors.Timeout) as info:
        d.remaining()
    assert isinstance(info.value, TimeoutError) and "op" in str(info.value)


def test_log_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NOMAD_CTR_STATE_DIR", str(tmp_path))
    root = state_dir()
    assert root == tmp_path
    files = LogFiles.for_container(root, "ns1", "c1")
    paths = files.create()
    out = paths["stdout"]
    assert out == str(tmp_path / "logs/ns1/c1/stdout") and paths["stderr"].endswith("/stderr")
    with open(out, "ab") as f:
        f.write(b"hello\n")
    files.create()  # existing files are kept, not truncated
    assert files.read("stdout") == b"hello\n" and files.read("stderr") == b""
    with pytest.raises(errors.InvalidArgument, match="^stream="):
        files.read("stdin")
    other = LogFiles.for_container(root, "ns1", "c2")
    other.create()
    files.remove()
    assert not files.exists() and other.exists()
    other.remove()
    assert not (tmp_path / "logs/ns1").exists(), "an empty namespace directory is pruned"
    files.remove()  # idempotent
    assert list(files.create(("stderr",))) == ["stderr"]
    assert not files.path("stdout").exists()
    files.remove()
    monkeypatch.delenv("NOMAD_CTR_STATE_DIR")
    assert str(state_dir()) == "/run/nomad-ctr"
