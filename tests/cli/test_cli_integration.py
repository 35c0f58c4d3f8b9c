"""nomad-ctr against the test stack: the container verbs and run-job, as a user runs them
(a subprocess, exit codes and output)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "nomad_ctr.cli"]


@pytest.fixture(scope="module")
def env(stack) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    namespace = f"cli-{uuid.uuid4().hex[:8]}"
    e = {
        **os.environ,
        "CONTAINERD_ADDRESS": stack.containerd_address,
        "CONTAINERD_NAMESPACE": namespace,
    }
    yield e
    from nomad_ctr import Client

    with Client(stack.containerd_address, namespace) as client:
        for c in client.containers.list():
            c.delete(force=True)
        for image in client.images.list():
            client.images.remove(image.name)


def cli(
    env: dict[str, str], *args: str, input: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        input=input,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_pull_prints_the_digest(env: dict[str, str], images) -> None:  # type: ignore[no-untyped-def]
    proc = cli(env, "pull", images.plain)
    assert proc.returncode == 0, proc.stderr
    ref, digest = proc.stdout.split()
    assert ref == images.plain and digest.startswith("sha256:")


def test_private_pull_reads_the_password_from_stdin_and_never_prints_it(env, stack, images) -> None:  # type: ignore[no-untyped-def]
    bad = "not-the-password-" + uuid.uuid4().hex
    proc = cli(
        env, "pull", "--user", stack.registry_user, "--password-stdin", images.private, input=bad
    )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "401" in proc.stderr
    assert bad not in proc.stderr + proc.stdout
    proc = cli(
        env,
        "pull",
        "-q",
        "--user",
        stack.registry_user,
        "--password-stdin",
        images.private,
        input=stack.registry_password + "\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert stack.registry_password not in proc.stderr + proc.stdout


def test_run_streams_output_and_returns_the_exit_code(env, images) -> None:  # type: ignore[no-untyped-def]
    proc = cli(
        env,
        "run",
        "--rm",
        "-e",
        "WHO=world",
        images.plain,
        "sh",
        "-c",
        "echo hello $WHO; echo oops >&2; exit 7",
    )
    assert proc.returncode == 7
    assert proc.stdout == "hello world\n"
    assert proc.stderr == "oops\n"
    assert "run-" not in cli(env, "ps").stdout  # --rm removed it


def test_detached_container_verbs(env, images) -> None:  # type: ignore[no-untyped-def]
    name = f"c-{uuid.uuid4().hex[:6]}"
    proc = cli(
        env, "run", "-d", "--name", name, images.plain, "sh", "-c", "echo started; sleep 300"
    )
    assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr
    ps = cli(env, "ps").stdout.splitlines()
    row = next(line for line in ps if line.startswith(name))
    assert "running" in row and images.plain in row

    stats = cli(env, "stats", name)
    assert (
        stats.returncode == 0 and stats.stdout.startswith("cpu") and "pids       1" in stats.stdout
    )

    ex = cli(env, "exec", name, "--", "sh", "-c", "echo inside; exit 5")
    assert (ex.returncode, ex.stdout) == (5, "inside\n")

    deadline = time.monotonic() + 30
    while "started" not in (logs := cli(env, "logs", name)).stdout and time.monotonic() < deadline:
        time.sleep(0.2)
    assert logs.stdout == "started\n"

    rm = cli(env, "rm", name)
    assert rm.returncode == 1 and "must be stopped" in rm.stderr
    assert cli(env, "rm", "-f", name).returncode == 0
    assert name not in cli(env, "ps").stdout
    gone = cli(env, "stats", name)
    assert gone.returncode == 1 and "not found" in gone.stderr and "Traceback" not in gone.stderr


def _job(path: Path, image: str, script: str, extra: str = "") -> Path:
    path.write_text(
        'job "cli" {\n  group "g" {\n    task "main" {\n      driver = "containerd-driver"\n'
        f'      config {{\n        image = "{image}"\n        command = "sh"\n        args = ["-c", "{script}"]\n      }}\n'
        f"{extra}      resources {{\n        cpu = 100\n        memory = 64\n      }}\n    }}\n  }}\n}}\n"
    )
    return path


def test_run_job_streams_logs_and_returns_the_exit_code(env, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = _job(tmp_path / "j.nomad", images.plain, "echo from $NOMAD_JOB_ID; echo warn >&2; exit 4")
    alloc = tmp_path / "alloc"
    proc = cli(env, "run-job", str(job), "--alloc-dir", str(alloc))
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == "from cli\n"
    assert "warn\n" in proc.stderr and "finished with exit code 4" in proc.stderr
    assert (
        alloc / "alloc" / "logs" / "main.stdout.0"
    ).read_text() == "from cli\n"  # kept: --alloc-dir


def test_run_job_ctrl_c_stops_with_the_kill_signal(env, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = _job(
        tmp_path / "j.nomad",
        images.plain,
        "trap 'echo got-term; exit 9' USR2; echo ready; while true; do sleep 0.1; done",
        '      kill_signal = "SIGUSR2"\n      kill_timeout = "20s"\n',
    )
    proc = subprocess.Popen(
        [*CLI, "run-job", str(job)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 9, err
    assert out == "got-term\n"
    assert "stopping the task (SIGUSR2" in err


def test_run_job_stop_after_stops_with_the_kill_signal(env, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = _job(
        tmp_path / "j.nomad",
        images.plain,
        "trap 'echo got-term; exit 9' USR2; echo ready; while true; do sleep 0.1; done",
        '      kill_signal = "SIGUSR2"\n      kill_timeout = "20s"\n',
    )
    proc = cli(env, "run-job", str(job), "--stop-after", "2")
    assert proc.returncode == 9, proc.stderr
    assert proc.stdout == "ready\ngot-term\n"
    assert "stopping the task (SIGUSR2" in proc.stderr


def test_run_ctrl_c_sends_sigterm_then_sigkill(env, images) -> None:  # type: ignore[no-untyped-def]
    # PID 1 in the container ignores an untrapped SIGTERM, so the second Ctrl-C's
    # SIGKILL is what ends it: both steps are exercised
    proc = subprocess.Popen(
        [
            *CLI,
            "run",
            "--rm",
            images.plain,
            "sh",
            "-c",
            "trap 'echo term' TERM; echo ready; while true; do sleep 0.1; done",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.stdout.readline() == "term\n"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + 9, err
    assert "sending SIGTERM" in err and "sending SIGKILL" in err
