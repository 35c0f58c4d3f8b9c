"""The task of a container: status, wait, kill, exec, exec_stream, stats, pids."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from nomad_ctr import Client, Container, ContainerSpec, TaskState, errors

pytestmark = pytest.mark.integration


@pytest.fixture
def sleeper(client: Client, plain: str, cid: str) -> Iterator[Container]:
    """A running container whose init is a shell waiting on a child (so SIGTERM to all
    processes ends it with 143)."""
    c = client.containers.create(cid, plain, spec=ContainerSpec(args=["sh", "-c", "sleep 600 & wait $!"]))
    with c:
        c.start()
        yield c


def test_status_running_then_stopped(sleeper: Container) -> None:
    st = sleeper.status()
    assert st.state is TaskState.RUNNING and st.pid > 0 and st.exit_code is None
    sleeper.kill("SIGKILL")
    es = sleeper.wait(timeout=30)
    assert es.exit_code == 137 and es.signal is signal.SIGKILL and not es.oom_killed
    st = sleeper.status()
    assert st.state is TaskState.STOPPED and st.exit_code == 137 and st.exited_at is not None


@pytest.mark.parametrize(
    ("sig", "all_", "code"),
    [("SIGKILL", False, 137), (signal.SIGTERM, True, 143), ("usr1", True, 138), (9, False, 137)],
)
def test_kill_gives_128_plus_signal(sleeper: Container, sig, all_: bool, code: int) -> None:
    sleeper.kill(sig, all=all_)
    assert sleeper.wait(timeout=30).exit_code == code


def test_kill_rejects_unknown_signal(sleeper: Container) -> None:
    with pytest.raises(errors.InvalidArgument, match="^signal="):
        sleeper.kill("SIGWHATEVER")


def test_wait_timeout(sleeper: Container) -> None:
    with pytest.raises(errors.Timeout) as info:
        sleeper.wait(timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert sleeper.status().state is TaskState.RUNNING


def test_delete_running_needs_force(sleeper: Container) -> None:
    with pytest.raises(errors.FailedPrecondition):
        sleeper.delete()
    assert sleeper.status().state is TaskState.RUNNING
    sleeper.delete(force=True)
    with pytest.raises(errors.ContainerNotFound):
        sleeper.info()


def test_exec_output_and_exit_code(sleeper: Container) -> None:
    r = sleeper.exec(["sh", "-c", "echo hi; echo oops >&2; exit 4"], timeout=30)
    assert (r.exit_code, r.stdout, r.stderr) == (4, b"hi\n", b"oops\n")


def test_exec_env_cwd_user(sleeper: Container) -> None:
    r = sleeper.exec(["sh", "-c", 'echo "$FOO"; pwd; id -u'], env={"FOO": "bar"}, cwd="/tmp",
                     user="1234", timeout=30)
    assert r.stdout.decode().split() == ["bar", "/tmp", "1234"], r


def test_exec_large_output(sleeper: Container) -> None:
    r = sleeper.exec(["sh", "-c", "head -c 3000000 /dev/zero"], timeout=60)
    assert r.exit_code == 0 and len(r.stdout) == 3_000_000


def test_exec_timeout_kills_process(sleeper: Container) -> None:
    with pytest.raises(errors.Timeout):
        sleeper.exec(["sleep", "300"], timeout=1)
    # the exec'd sleep is gone: only the init shell and its own sleep remain
    assert len(sleeper.pids()) == 2


def test_exec_stream_with_stdin(sleeper: Container) -> None:
    with sleeper.exec_stream(["sh", "-c", "cat; echo done >&2"], stdin=True) as proc:
        assert proc.pid > 0
        proc.write(b"hello ")
        proc.write(b"world\n")
        proc.close_stdin()
        out, err = b"", b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = proc.read(timeout=1)
            out += chunk.stdout
            err += chunk.stderr
            if chunk.exited:
                assert chunk.exit_code == 0
                break
        assert (out, err) == (b"hello world\n", b"done\n")
        assert proc.wait(timeout=10) == 0


def test_exec_stream_kill(sleeper: Container) -> None:
    with sleeper.exec_stream(["sleep", "300"]) as proc:
        proc.kill("SIGKILL")
        assert proc.wait(timeout=10) == 137


def test_exec_in_stopped_container_fails(client: Client, plain: str, cid: str) -> None:
    with client.containers.create(cid, plain, spec=ContainerSpec(args=["true"])) as c:
        c.start()
        c.wait(timeout=30)
        with pytest.raises(errors.ContainerdError):
            c.exec(["true"], timeout=10)


def test_stats_and_pids(client: Client, plain: str, cid: str) -> None:
    busy = ContainerSpec(args=["sh", "-c", "while :; do :; done"])
    with client.containers.create(cid, plain, spec=busy) as c:
        pid = c.start()
        first = c.stats()
        assert first.memory.usage is not None and first.memory.usage > 0
        assert first.cgroup in ("v1", "v2")
        assert first.pids.current is not None and first.pids.current >= 1
        time.sleep(0.5)
        second = c.stats()
        assert second.cpu.total_ns > first.cpu.total_ns  # type: ignore[operator]
        assert pid in c.pids()


def test_pids_limit_and_memory_limit_visible(client: Client, plain: str, cid: str) -> None:
    spec = ContainerSpec(args=["sleep", "600"], memory_limit="64m", pids_limit=20)
    with client.containers.create(cid, plain, spec=spec) as c:
        c.start()
        m = c.stats()
        assert m.memory.limit == 64 << 20
        assert m.pids.limit == 20


def test_task_calls_without_task(client: Client, plain: str, cid: str) -> None:
    with client.containers.create(cid, plain, spec=ContainerSpec(args=["true"])) as c:
        with pytest.raises(errors.TaskNotFound):
            c.status()
        with pytest.raises(errors.TaskNotFound):
            c.wait(timeout=5)
        with pytest.raises(errors.TaskNotFound):
            c.kill()


INTERRUPT_SCRIPT = """
import os, signal, sys, threading
from nomad_ctr import Client, ContainerSpec
address, namespace, image, cid = sys.argv[1:]
with Client(address=address, namespace=namespace) as client:
    with client.containers.create(cid, image, spec=ContainerSpec(args=["sleep", "600"])) as c:
        c.start()
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            c.wait()
        except KeyboardInterrupt:
            print("interrupted")
"""


def test_ctrl_c_interrupts_wait(client: Client, plain: str, cid: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPT_SCRIPT, client.address, client.namespace, plain, cid],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.stdout.strip() == "interrupted", proc.stderr
    with pytest.raises(errors.ContainerNotFound):
        client.containers.get(cid)


def test_exec_stream_tty_and_resize(sleeper: Container) -> None:
    # The process waits for a line on stdin so the resize lands before `stty size` runs.
    with sleeper.exec_stream(["sh", "-c", "read x; tty; stty size"], tty=True, stdin=True) as proc:
        proc.resize(100, 40)
        proc.write(b"go\n")
        out = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = proc.read(timeout=1)
            out += chunk.stdout + chunk.stderr
            if chunk.exited:
                break
        assert proc.wait(timeout=10) == 0
    lines = out.decode().split("\r\n")
    assert lines[1].startswith("/dev/pts/") and lines[2] == "40 100", out


def test_run_with_tty(client: Client, plain: str) -> None:
    spec = ContainerSpec(tty=True, args=["sh", "-c", "tty; echo err >&2"])
    result = client.containers.run(plain, spec=spec, timeout=60)
    # a terminal merges stderr into stdout, with CRLF line ends
    assert result.stdout.split(b"\r\n")[:2] == [b"/dev/pts/0", b"err"], result
    assert result.stderr == b""


def test_container_found_again_starts_with_its_terminal(client: Client, plain: str, cid: str) -> None:
    """A container made with tty=True and found again later (no spec at hand) still gets a
    terminal: the bridge reads process.terminal from the container's own spec."""
    client.containers.create(cid, plain, spec=ContainerSpec(tty=True, args=["sh", "-c", "tty"]))
    with client.containers.get(cid) as found:
        found.start()
        assert found.wait(timeout=30).exit_code == 0
        assert found.logs().replace(b"\r\n", b"\n") == b"/dev/pts/0\n"
