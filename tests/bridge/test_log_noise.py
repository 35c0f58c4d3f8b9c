"""No Go-side log line reaches the host's stderr unless NOMAD_CTR_GOBRIDGE_LOG is set.

A child process drives the paths that make the containerd client and gRPC log (failed
and cancelled pulls, bad credentials, exec, a killed exec, events, dead and mute
sockets); its stderr must stay empty. With the variable set the same run does log, which
shows the run exercises logging paths at all."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.integration

SCRIPT = r'''
import socket, sys, tempfile
from nomad_ctr import Auth, Client, ContainerSpec, errors

addr, ns, plain, big, private = sys.argv[1:6]
with Client(address=addr, namespace=ns, timeout=30) as c:
    for ref, kw in ((("127.0.0.1:1/nope/x:latest"), {}), (plain.replace(":latest", ":no-such-tag"), {}),
                    (private, {"auth": Auth("nomadctr", "wrong-password")}), (big, {"timeout": 0.2})):
        try:
            c.images.pull(ref, **{"timeout": 20, **kw})
        except errors.ContainerdError:
            pass
    c.images.pull(plain, timeout=120)
    try:
        with c.containers.create("noise", plain, spec=ContainerSpec(args=["sleep", "600"])) as ct:
            ct.start()
            assert ct.exec(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30).exit_code == 3
            p = ct.exec_stream(["cat"], stdin=True)
            p.write(b"x\n")
            p.close()  # killed while running
            try:
                ct.exec(["/no/such/binary"], timeout=30)
            except errors.ContainerdError:
                pass
            with c.events() as ev:
                ct.kill("SIGKILL")
                ev.get(timeout=5)
            ct.wait(timeout=30)
    finally:
        c.images.remove(plain, sync=True)
with tempfile.TemporaryDirectory() as d:
    s = socket.socket(socket.AF_UNIX)
    s.bind(d + "/mute.sock")
    s.listen(4)
    for path in ("/mute.sock", "/missing.sock"):
        try:
            Client(address=d + path, namespace=ns, timeout=0.5)
        except errors.ContainerdError:
            pass
print("done")
'''


def run(stack, images, log_level: str | None) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_CTR_GOBRIDGE_LOG", "GRPC_GO_LOG"))}
    if log_level:
        env["NOMAD_CTR_GOBRIDGE_LOG"] = log_level
    ns = f"nctr-noise-{uuid.uuid4().hex[:6]}"
    try:
        return subprocess.run(
            [sys.executable, "-c", SCRIPT, stack.containerd_address, ns, images.plain, images.big, images.private],
            env=env, capture_output=True, text=True, timeout=300, check=False)
    finally:
        subprocess.run(["ctr", "--address", stack.containerd_address, "namespaces", "remove", ns],
                       capture_output=True, timeout=30, check=False)


def test_no_go_log_on_stderr_by_default(stack, images) -> None:  # type: ignore[no-untyped-def]
    proc = run(stack, images, None)
    assert proc.stdout.strip() == "done", proc.stderr
    assert proc.stderr == ""


def test_the_variable_turns_the_log_on(stack, images) -> None:  # type: ignore[no-untyped-def]
    proc = run(stack, images, "debug")
    assert proc.stdout.strip() == "done", proc.stderr
    assert '"level":"debug"' in proc.stderr
    assert "wrong-password" not in proc.stderr  # credentials stay out of the log too
