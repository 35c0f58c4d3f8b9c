"""nomad-ctr against the test stack: the container verbs and run-job, as a user runs them
(a subprocess, exit codes and output)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "nomad_ctr.cli"]


def _env_for(stack, namespace: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        **os.environ,
        "CONTAINERD_ADDRESS": stack.containerd_address,
        "CONTAINERD_NAMESPACE": namespace,
    }


def _ctr(stack, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        ["ctr", "--address", stack.containerd_address, "-n", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _drop_namespace(stack, namespace: str) -> None:  # type: ignore[no-untyped-def]
    """Remove every container and image in `namespace`, then the namespace itself (its
    snapshots and content go shortly after the images, so the removal is retried)."""
    from nomad_ctr import Client

    with Client(stack.containerd_address, namespace) as client:
        for c in client.containers.list():
            c.delete(force=True)
        for image in client.images.list():
            client.images.remove(image.name, sync=True)
    deadline = time.monotonic() + 30
    while namespace in _ctr(stack, namespace, "namespaces", "ls", "-q").stdout.split():
        _ctr(stack, namespace, "namespaces", "remove", namespace)
        if time.monotonic() > deadline:
            raise AssertionError(f"namespace {namespace} still not empty after the test")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def env(stack) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    namespace = f"cli-{uuid.uuid4().hex[:8]}"
    yield _env_for(stack, namespace)
    _drop_namespace(stack, namespace)


@pytest.fixture
def fresh_env(stack) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """Like `env`, with a containerd namespace of the test's own (nothing cached in it)."""
    namespace = f"cli-{uuid.uuid4().hex[:8]}"
    yield _env_for(stack, namespace)
    _drop_namespace(stack, namespace)


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
    assert proc.stderr == ""  # stderr is not a terminal: no progress bar


# ---- pull on a terminal: the progress bar ------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = "\u2501"  # the heavy horizontal line rich draws bars with


def on_a_terminal(
    env: dict[str, str], *args: str, columns: int, timeout: float = 180
) -> tuple[int, str]:
    """Run nomad-ctr with stdout and stderr on a pseudo-terminal `columns` wide, as from
    an interactive shell; its exit status and everything it wrote (escapes included)."""
    term_env = {
        k: v
        for k, v in env.items()
        if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    }
    term_env["TERM"] = "xterm-256color"
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        proc = subprocess.Popen(
            [*CLI, *args],
            env=term_env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert time.monotonic() < deadline, f"nomad-ctr {args} still writing after {timeout}s"
            if not select.select([master], [], [], 1.0)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout=30), out.decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def screen_lines(raw: str) -> list[str]:
    """What each redraw put on a line: escapes dropped, split at CR and LF."""
    return [part for line in ANSI.sub("", raw).split("\n") for part in line.split("\r")]


def registry_manifest(ref: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    """The digest and manifest the registry serves for `ref` (host/repo:tag)."""
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    req = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["Docker-Content-Digest"], json.load(resp)


@pytest.mark.parametrize("columns", [80, 160])
def test_pull_on_a_terminal_draws_a_progress_bar(fresh_env, images, columns: int) -> None:  # type: ignore[no-untyped-def]
    digest, manifest = registry_manifest(images.big)
    layers = len(manifest["layers"])
    total = sum(layer["size"] for layer in manifest["layers"])
    assert layers > 1 and 10**6 <= total < 10**9, "the big test image should be tens of MB"
    mb = f"{total / 10**6:.1f}"

    status, raw = on_a_terminal(fresh_env, "pull", images.big, columns=columns)
    assert status == 0, raw
    lines = screen_lines(raw)
    frames = [line for line in lines if BAR in line]
    assert frames, f"no progress bar drawn: {raw!r}"
    # the last redraw, once the pull is done: every layer and every byte of the manifest,
    # all on one line even on an 80-column terminal (only the ref may be cut short)
    final = frames[-1]
    assert final.startswith("pull 127.0.0.1"), final
    assert f"{mb}/{mb} MB" in final and f"{layers}/{layers} layers" in final, final
    if columns >= 120:
        assert final.startswith(f"pull {images.big} "), final
    assert all(len(frame) <= columns for frame in frames), frames
    assert "0/0 layers" not in raw  # no count before the manifest is read
    # the bar hid the cursor and showed it again; the digest line is what stays
    assert raw.rfind("\x1b[?25l") < raw.rfind("\x1b[?25h"), raw
    assert [line for line in lines if line.strip()][-1] == f"{images.big} {digest}"


def test_pull_quiet_on_a_terminal_draws_no_bar(fresh_env, images) -> None:  # type: ignore[no-untyped-def]
    digest, _ = registry_manifest(images.plain)
    status, raw = on_a_terminal(fresh_env, "pull", "-q", images.plain, columns=120)
    assert status == 0, raw
    assert raw == f"{images.plain} {digest}\r\n"


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


def _two_task_job(path: Path, image: str) -> Path:
    task = (
        '    task "{name}" {{\n      driver = "containerd-driver"\n'
        '      config {{\n        image = "{image}"\n        command = "sh"\n'
        '        args = ["-c", "{script}"]\n      }}\n'
        "      resources {{\n        cpu = 100\n        memory = 64\n      }}\n    }}\n"
    )
    first = task.format(name="first", image=image, script="echo first ran; exit 0")
    second = task.format(
        name="second", image=image, script="echo second ran as $NOMAD_TASK_NAME; echo err2 >&2; exit 3"
    )
    path.write_text(f'job "pair" {{\n  group "g" {{\n{first}{second}  }}\n}}\n')
    return path


def _containerd_holds(stack, env: dict[str, str]) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Containers, images and snapshots in the env's namespace (as ctr lists them)."""
    ns = env["CONTAINERD_NAMESPACE"]
    held = {}
    for kind in ("containers", "images"):
        proc = _ctr(stack, ns, kind, "ls", "-q")
        assert proc.returncode == 0, proc.stderr
        held[kind] = proc.stdout.split()
    proc = _ctr(stack, ns, "snapshots", "ls")  # no -q: a header line, then KEY PARENT KIND
    assert proc.returncode == 0, proc.stderr
    held["snapshots"] = [line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()]
    return held


def test_run_job_task_chooses_one_of_several(fresh_env, stack, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = _two_task_job(tmp_path / "pair.nomad", images.plain)
    proc = cli(fresh_env, "run-job", str(job), "--task", "second")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "second ran as second\n"  # streamed; the first task never ran
    assert "err2\n" in proc.stderr
    assert "starting task 'second' of job 'pair'" in proc.stderr
    assert "finished with exit code 3" in proc.stderr
    assert _containerd_holds(stack, fresh_env)["containers"] == []  # destroyed after the run


def test_run_job_needs_a_task_name_it_knows(fresh_env, stack, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = _two_task_job(tmp_path / "pair.nomad", images.plain)
    proc = cli(fresh_env, "run-job", str(job), "--task", "third")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (
        f"nomad-ctr: {job}: no task 'third' in job 'pair' (tasks: first, second)\n"
    )
    proc = cli(fresh_env, "run-job", str(job))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (
        f"nomad-ctr: {job}: job 'pair' has several tasks (first, second); choose one with --task\n"
    )
    # refused before the plugin or containerd were asked for anything
    assert _containerd_holds(stack, fresh_env) == {"containers": [], "images": [], "snapshots": []}
