"""The bridge end to end on the real test containerd and registry (no Python API layer).

What the API track relies on: pull (progress, auth), create with the CONTRACT.md spec
semantics, tasks with direct-path output files, exec, metrics, events, recovery from a
new connection, and delete leaving nothing behind.
"""

from __future__ import annotations

import base64
import contextlib
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from nomad_ctr import errors

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pulled(raw_client, images) -> dict:  # type: ignore[no-untyped-def]
    for ref in (images.plain, images.configured):
        raw_client.call("images.pull", {"ref": ref}, timeout=120)
    return {"plain": images.plain, "configured": images.configured}


def wait_file(path: Path, text: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in (content := path.read_text()):
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}: {path.read_text() if path.exists() else '(missing)'!r}")


def run_to_exit(raw_client, cid: str, tmp_path: Path, **create: object) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    out, err = tmp_path / f"{cid}.out", tmp_path / f"{cid}.err"
    raw_client.call("containers.create", {"id": cid, **create})
    try:
        raw_client.call("tasks.create", {"id": cid, "stdout": str(out), "stderr": str(err)})
        raw_client.call("tasks.start", {"id": cid})
        st = raw_client.call("tasks.wait", {"id": cid}, timeout=60)
        return st["exit_code"], out.read_text(), err.read_text()
    finally:
        raw_client.call("containers.delete", {"id": cid, "force": True}, timeout=30)


def test_connect_version_health(raw_client) -> None:  # type: ignore[no-untyped-def]
    v = raw_client.call("client.version")
    assert v["version"] and "revision" in v
    assert raw_client.call("client.health") == {"serving": True}


def test_connect_to_a_dead_socket_is_unavailable(bridge, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.Unavailable, match="nothing.sock"):
        bridge.call("client.connect", {"address": str(tmp_path / "nothing.sock"), "namespace": "x", "timeout_ms": 500})


def test_pull_reports_progress_and_returns_the_image(raw_client, images) -> None:  # type: ignore[no-untyped-def]
    seen: list[dict] = []
    with raw_client.bridge.Op() as op:
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(raw_client.call("images.pull", {"ref": images.big}, op=op, timeout=300)))
        t.start()
        while t.is_alive():
            if p := op.poll(0.2):
                seen.append(p)
        t.join()
        seen.append(op.poll(0))
    assert result["name"] == images.big and result["digest"].startswith("sha256:")
    final = seen[-1]
    assert final["done"] is True and final["ref"] == images.big
    assert len(final["layers"]) > 1
    assert all(layer["status"] in ("done", "exists") for layer in final["layers"])
    assert all(layer["offset"] == layer["total"] > 0 for layer in final["layers"])
    assert raw_client.call("images.get", {"ref": images.big})["digest"] == result["digest"]
    raw_client.call("images.remove", {"ref": images.big, "sync": True})
    with pytest.raises(errors.ImageNotFound):
        raw_client.call("images.get", {"ref": images.big})


def test_image_config_is_reported(raw_client, pulled) -> None:  # type: ignore[no-untyped-def]
    img = raw_client.call("images.get", {"ref": pulled["configured"]})
    cfg = img["config"]
    assert cfg["entrypoint"] == ["/bin/sh", "-c"] and cfg["cmd"] == ["echo configured"]
    assert cfg["working_dir"] == "/srv/app" and cfg["user"] == "1000:1000"
    assert "GREETING=hello" in cfg["env"]
    names = [i["name"] for i in raw_client.call("images.list")["images"]]
    assert pulled["plain"] in names and pulled["configured"] in names


def test_private_registry_needs_and_takes_credentials(raw_client, images, stack) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.Unauthenticated):
        raw_client.call("images.pull", {"ref": images.private}, timeout=60)
    wrong = "wrong-" + stack.registry_password[:3] + "-secret"
    with pytest.raises(errors.Unauthenticated) as exc:
        raw_client.call("images.pull", {"ref": images.private, "auth": {"username": stack.registry_user, "password": wrong}}, timeout=60)
    assert wrong not in str(exc.value)
    img = raw_client.call("images.pull", {"ref": images.private, "auth": {"username": stack.registry_user, "password": stack.registry_password}}, timeout=60)
    assert img["name"] == images.private


def test_pull_of_a_missing_image_is_not_found(raw_client, stack) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ImageNotFound):
        raw_client.call("images.pull", {"ref": f"{stack.registry}/nomad-ctr/does-not-exist:latest"}, timeout=60)


def test_image_defaults_run_as_configured(raw_client, pulled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_to_exit(raw_client, "defaults", tmp_path, image=pulled["configured"])
    assert (code, out) == (0, "configured\n")


def test_command_replaces_cmd_keeping_entrypoint_env_cwd_user(raw_client, pulled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_to_exit(
        raw_client, "command", tmp_path, image=pulled["configured"],
        spec={"command": ['echo "$GREETING $EXTRA from $(pwd) as $(id -u):$(id -g)"'], "env": ["EXTRA=there"]},
    )
    assert (code, out) == (0, "hello there from /srv/app as 1000:1000\n")


def test_entrypoint_drops_image_cmd_and_args_override_everything(raw_client, pulled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_to_exit(raw_client, "entry", tmp_path, image=pulled["configured"], spec={"entrypoint": ["/bin/echo"]})
    assert (code, out) == (0, "\n")
    code, out, err = run_to_exit(
        raw_client, "args", tmp_path, image=pulled["configured"],
        spec={"args": ["sh", "-c", "echo out; echo err >&2; exit 7"], "user": "0", "cwd": "/tmp", "hostname": "boxy"},
    )
    assert (code, out, err) == (7, "out\n", "err\n")


def test_invalid_spec_and_duplicate_id(raw_client, pulled) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.InvalidArgument, match="spec.memory_limit -1"):
        raw_client.call("containers.create", {"id": "bad", "image": pulled["plain"], "spec": {"memory_limit": -1}})
    with pytest.raises(errors.InvalidArgument, match="spec.user"):
        raw_client.call("containers.create", {"id": "bad", "image": pulled["plain"], "spec": {"user": "nosuchuser"}})
    with pytest.raises(errors.InvalidArgument, match="id"):
        raw_client.call("containers.create", {"id": "bad id!", "image": pulled["plain"]})
    assert raw_client.call("containers.list", {"labels": {}})["containers"] == []
    assert "bad" not in raw_client.ctr("snapshots", "ls")
    raw_client.call("containers.create", {"id": "dup", "image": pulled["plain"]})
    try:
        with pytest.raises(errors.AlreadyExists):
            raw_client.call("containers.create", {"id": "dup", "image": pulled["plain"]})
    finally:
        raw_client.call("containers.delete", {"id": "dup"})


def test_long_running_task_lifecycle(raw_client, pulled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cid = "lifecycle"
    out = tmp_path / "logs" / "out.log"  # directory and file are created by the bridge
    sub = raw_client.call("events.subscribe", {"topics": ["/tasks/exit"]})["subscription"]
    sub_handle = raw_client.bridge.Handle(sub, "subscription")
    info = raw_client.call("containers.create", {
        "id": cid, "image": pulled["plain"], "labels": {"suite": "bridge"},
        "spec": {"args": ["sh", "-c", "echo started; while true; do sleep 1; done"],
                 "memory_limit": 64 << 20, "pids_limit": 32, "seccomp": True, "cap_drop": ["net_raw"]},
    })
    assert info["id"] == cid and info["snapshotter"] == "overlayfs" and info["labels"] == {"suite": "bridge"}
    try:
        pid = raw_client.call("tasks.create", {"id": cid, "stdout": str(out)})["pid"]
        assert raw_client.call("tasks.status", {"id": cid})["status"] == "created"
        assert raw_client.call("tasks.start", {"id": cid})["pid"] == pid > 0
        wait_file(out, "started\n")
        st = raw_client.call("tasks.status", {"id": cid})
        assert st["status"] == "running" and st["exit_code"] is None

        with pytest.raises(errors.FailedPrecondition):
            raw_client.call("containers.delete", {"id": cid})

        assert pid in raw_client.call("tasks.pids", {"id": cid})["pids"]
        m = raw_client.call("tasks.metrics", {"id": cid})
        assert m["cgroup"] in ("v1", "v2")
        assert m["memory"]["limit"] == 64 << 20 and m["memory"]["usage"] > 0
        assert m["pids"]["limit"] == 32 and m["pids"]["current"] >= 1
        assert m["cpu"]["total_ns"] > 0

        # exec with stdin, env and user; output read by polling
        ex = raw_client.call("tasks.exec", {"id": cid, "exec_id": "e1", "stdin": True, "env": ["X=1"], "user": "1000",
                                            "args": ["sh", "-c", 'echo "x=$X uid=$(id -u)"; cat; echo bye >&2; exit 3']})
        handle = raw_client.bridge.Handle(ex["exec"], "exec")
        try:
            raw_client.bridge.call("exec.write", {"exec": ex["exec"], "data": base64.b64encode(b"piped\n").decode()}, timeout=10)
            raw_client.bridge.call("exec.close_stdin", {"exec": ex["exec"]}, timeout=10)
            stdout = stderr = b""
            while True:
                r = raw_client.bridge.call("exec.read", {"exec": ex["exec"]}, timeout=10)
                stdout += base64.b64decode(r["stdout"])
                stderr += base64.b64decode(r["stderr"])
                if r["exited"]:
                    break
            assert (stdout, stderr, r["exit_code"]) == (b"x=1 uid=1000\npiped\n", b"bye\n", 3)
            assert r["stdout_eof"] and r["stderr_eof"]
            assert raw_client.bridge.call("exec.wait", {"exec": ex["exec"]}, timeout=10)["exit_code"] == 3
        finally:
            handle.close()

        with pytest.raises(errors.InvalidArgument):
            raw_client.call("tasks.exec", {"id": cid, "exec_id": "e2", "args": ["/no/such/binary"]})

        raw_client.call("tasks.kill", {"id": cid, "signal": int(signal.SIGKILL)})
        exit_status = raw_client.call("tasks.wait", {"id": cid}, timeout=30)
        assert exit_status["exit_code"] == 137 and exit_status["exited_at"]
        st = raw_client.call("tasks.status", {"id": cid})
        assert st["status"] == "stopped" and st["exit_code"] == 137

        events = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(e["id"] == cid for e in events):
            events += raw_client.bridge.call("events.next", {"subscription": sub}, timeout=1)["events"]
        exits = [e for e in events if e["id"] == cid]
        assert exits and exits[0]["topic"] == "/tasks/exit" and exits[0]["exit_code"] == 137
        assert exits[0]["container_id"] == cid and exits[0]["namespace"] == raw_client.namespace
    finally:
        sub_handle.close()
        raw_client.call("containers.delete", {"id": cid, "force": True}, timeout=30)
    with pytest.raises(errors.ContainerNotFound):
        raw_client.call("containers.get", {"id": cid})
    assert cid not in raw_client.ctr("snapshots", "ls")
    assert cid not in raw_client.ctr("tasks", "ls")


def test_recovery_from_a_new_connection_and_output_without_us(bridge, raw_client, pulled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cid = "recover"
    out = tmp_path / "recover.log"
    raw_client.call("containers.create", {"id": cid, "image": pulled["plain"],
                                          "spec": {"args": ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"]}})
    try:
        raw_client.call("tasks.create", {"id": cid, "stdout": str(out), "stderr": str(out)})
        raw_client.call("tasks.start", {"id": cid})
        wait_file(out, "tick 1\n")
        # A second connection (as after a restart of our process) finds and controls the task
        # without attaching any I/O; output kept flowing into the file meanwhile.
        other = bridge.call("client.connect", {"address": raw_client.address, "namespace": raw_client.namespace})["client"]
        with bridge.Handle(other, "client"):
            assert bridge.call("tasks.status", {"client": other, "id": cid})["status"] == "running"
            wait_file(out, "tick 5\n")
            with bridge.Op() as op:
                threading.Timer(0.2, op.cancel).start()
                with pytest.raises(errors.Cancelled):
                    bridge.call("tasks.wait", {"client": other, "id": cid}, op=op)
            with pytest.raises(errors.Timeout):
                bridge.call("tasks.wait", {"client": other, "id": cid}, timeout=0.2)
            bridge.call("tasks.kill", {"client": other, "id": cid, "signal": 9, "all": True})
            assert bridge.call("tasks.wait", {"client": other, "id": cid}, timeout=30)["exit_code"] == 137
            assert bridge.call("tasks.delete", {"client": other, "id": cid})["exit_code"] == 137
            with pytest.raises(errors.TaskNotFound):
                bridge.call("tasks.status", {"client": other, "id": cid})
    finally:
        raw_client.call("containers.delete", {"id": cid, "force": True}, timeout=30)


def test_many_clients_leave_no_handles(bridge, raw_client) -> None:  # type: ignore[no-untyped-def]
    before = bridge.call("debug.handles", {})["total"]
    for _ in range(20):
        h = bridge.call("client.connect", {"address": raw_client.address, "namespace": raw_client.namespace})["client"]
        with bridge.Handle(h, "client"):
            bridge.call("client.version", {"client": h})
    assert bridge.call("debug.handles", {})["total"] == before


def test_exec_with_a_terminal_and_resize(raw_client, pulled) -> None:  # type: ignore[no-untyped-def]
    cid = "tty"
    raw_client.call("containers.create", {"id": cid, "image": pulled["plain"], "spec": {"args": ["sleep", "600"]}})
    try:
        raw_client.call("tasks.create", {"id": cid})
        raw_client.call("tasks.start", {"id": cid})
        ex = raw_client.call("tasks.exec", {"id": cid, "exec_id": "t", "tty": True, "stdin": True,
                                            "args": ["sh", "-c", "read l; stty size; tty; echo got $l"]})
        with raw_client.bridge.Handle(ex["exec"], "exec"):
            bridge = raw_client.bridge
            bridge.call("exec.resize", {"exec": ex["exec"], "width": 100, "height": 40}, timeout=10)
            bridge.call("exec.write", {"exec": ex["exec"], "data": base64.b64encode(b"abc\n").decode()}, timeout=10)
            out = b""
            while True:
                r = bridge.call("exec.read", {"exec": ex["exec"]}, timeout=10)
                out += base64.b64decode(r["stdout"])
                assert r["stderr"] == ""  # a terminal merges stderr into stdout
                if r["exited"]:
                    break
        assert out.replace(b"\r\n", b"\n") == b"abc\n40 100\n/dev/pts/0\ngot abc\n"
        assert r["exit_code"] == 0
    finally:
        raw_client.call("containers.delete", {"id": cid, "force": True}, timeout=30)


@pytest.mark.parametrize("tty,terminal,expect", [
    (True, True, "/dev/pts/0\nhi\n"),
    (True, None, "/dev/pts/0\nhi\n"),  # not given: the container's spec says terminal
    (False, None, "not a tty\nhi\n"),
])
def test_task_with_a_terminal_writes_to_a_regular_file(raw_client, pulled, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                       tty: bool, terminal: bool | None, expect: str) -> None:
    cid = f"term-{tty}-{terminal}".lower()
    out = tmp_path / "term.log"
    raw_client.call("containers.create", {"id": cid, "image": pulled["plain"],
                                          "spec": {"tty": tty, "args": ["sh", "-c", "tty; echo hi"]}})
    try:
        req = {"id": cid, "stdout": str(out), "stderr": str(out)}
        if terminal is not None:
            req["terminal"] = terminal
        raw_client.call("tasks.create", req)
        raw_client.call("tasks.start", {"id": cid})
        raw_client.call("tasks.wait", {"id": cid}, timeout=30)
        assert wait_file(out, "hi").replace("\r\n", "\n") == expect
    finally:
        raw_client.call("containers.delete", {"id": cid, "force": True}, timeout=30)


def test_namespace_override_per_request(raw_client, pulled) -> None:  # type: ignore[no-untyped-def]
    other = raw_client.namespace + "-ovr"
    cid = "ovr"
    raw_client.call("containers.create", {"id": cid, "image": pulled["plain"], "spec": {"args": ["true"]}})
    try:
        ids = [c["id"] for c in raw_client.call("containers.list")["containers"]]
        assert cid in ids
        assert raw_client.call("containers.list", {"namespace": other}) == {"containers": []}
        with pytest.raises(errors.NotFound, match='^container "ovr" not found'):
            raw_client.call("containers.get", {"id": cid, "namespace": other})
        # the override is per call: the handle's own namespace is unchanged
        assert raw_client.call("containers.get", {"id": cid})["id"] == cid
        with pytest.raises(errors.InvalidArgument, match="namespace"):
            raw_client.call("containers.list", {"namespace": "not valid"})
    finally:
        raw_client.call("containers.delete", {"id": cid, "force": True}, timeout=30)
    subprocess.run(["ctr", "--address", raw_client.address, "namespaces", "remove", other],
                   capture_output=True, timeout=30, check=False)


def test_timed_out_create_leaves_no_lease_or_snapshot(raw_client, images) -> None:  # type: ignore[no-untyped-def]
    """containers.create that unpacks a big image under a tiny deadline times out and
    leaves nothing (the client's own lease would have stayed 24 h). Own namespace, so no
    other test's snapshots or leases are in the way."""
    ns = raw_client.namespace + "-ctmo"

    def ctr(*args: str) -> list[str]:
        out = subprocess.run(["ctr", "--address", raw_client.address, "-n", ns, *args],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return [line.split()[0] for line in out.splitlines()[1:] if line.strip()]

    try:
        raw_client.call("images.pull", {"ref": images.big, "unpack": False, "namespace": ns}, timeout=300)
        with pytest.raises(errors.Timeout):
            raw_client.call("containers.create", {"id": "ctmo", "image": images.big, "namespace": ns,
                                                  "spec": {"args": ["true"]}}, timeout=0.05)
        assert ctr("leases", "ls") == []
        assert ctr("snapshots", "ls") == []
        assert ctr("containers", "ls") == []
    finally:
        with contextlib.suppress(errors.ContainerdError):
            raw_client.call("containers.delete", {"id": "ctmo", "force": True, "namespace": ns}, timeout=30)
        raw_client.call("images.remove", {"ref": images.big, "sync": True, "namespace": ns}, timeout=60)
        subprocess.run(["ctr", "--address", raw_client.address, "namespaces", "remove", ns],
                       capture_output=True, timeout=30, check=False)
