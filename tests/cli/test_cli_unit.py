"""nomad-ctr without containerd: parsing, usage errors, cheap startup, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nomad_ctr.cli.main import build_parser, main

pytestmark = pytest.mark.unit

CLI = [sys.executable, "-m", "nomad_ctr.cli"]


def test_global_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINERD_ADDRESS", "/run/x.sock")
    monkeypatch.setenv("CONTAINERD_NAMESPACE", "ns1")
    args = build_parser().parse_args(["ps"])
    assert (args.address, args.namespace) == ("/run/x.sock", "ns1")
    args = build_parser().parse_args(["--address", "/y.sock", "--namespace", "ns2", "ps"])
    assert (args.address, args.namespace) == ("/y.sock", "ns2")


def test_run_keeps_the_command_and_its_flags() -> None:
    args = build_parser().parse_args(
        ["run", "--rm", "-e", "A=1", "--name", "c", "img", "sh", "-c", "ls -l"]
    )
    assert (args.image, args.args, args.rm, args.env, args.name) == (
        "img",
        ["sh", "-c", "ls -l"],
        True,
        [("A", "1")],
        "c",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "-e", "NOEQUALS", "img"], "is not KEY=VALUE"),
        (["pull", "--timeout", "-1", "r"], "must be more than 0 seconds"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_password_only_from_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "--user", "u", "r"]) == 2
    assert "--user needs --password-stdin" in capsys.readouterr().err
    assert main(["pull", "--password-stdin", "r"]) == 2
    assert "--password-stdin needs --user" in capsys.readouterr().err


def test_exec_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exec", "c1"]) == 2
    assert "give the command to run" in capsys.readouterr().err


def test_startup_imports_nothing_heavy() -> None:
    code = (
        "import sys; from nomad_ctr.cli.main import build_parser; build_parser().parse_args(['ps']);"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('grpc', 'rich', 'hcl2', 'lark', 'cffi', 'msgpack')"
        " or m.startswith('nomad_ctr._bridge')]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_runtime_errors_are_one_line_without_traceback() -> None:
    proc = subprocess.run(
        [*CLI, "--address", "/nonexistent/containerd.sock", "ps"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nomad-ctr: ")
    assert "/nonexistent/containerd.sock" in lines[0]
    assert "Traceback" not in proc.stderr


def test_run_job_errors_name_the_file_and_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    job = tmp_path / "bad.nomad"
    job.write_text(
        'job "j" {\n  group "g" {\n    task "t" {\n      driver = "containerd-driver"\n'
        '      kill_timeout = "soon"\n    }\n  }\n}\n'
    )
    proc = subprocess.run(
        [*CLI, "run-job", str(job)], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == "nomad-ctr: task 't'.kill_timeout: 'soon' is not a duration (e.g. \"5s\", \"1m30s\")"
    )
    proc = subprocess.run(
        [*CLI, "run-job", str(tmp_path / "missing.nomad")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "missing.nomad: No such file or directory" in proc.stderr
