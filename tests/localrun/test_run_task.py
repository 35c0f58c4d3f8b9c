"""Tasks run through localrun on the real plugin, containerd and registry: the
Nomad-side sequence StartTask -> WaitTask -> StopTask -> DestroyTask, logs through the
FIFOs into alloc/logs, the alloc dir mounted into the container, kill_signal."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nomad_ctr._pb import driver_pb2
from nomad_ctr.localrun import DriverError, LocalPlugin, parse_job

pytestmark = pytest.mark.driver


@pytest.fixture(scope="module")
def plugin(stack) -> Iterator[LocalPlugin]:  # type: ignore[no-untyped-def]
    config = {
        "containerd_runtime": "io.containerd.runc.v2",
        "address": stack.containerd_address,
        "namespace": f"localrun-{uuid.uuid4().hex[:8]}",
        "insecure_registries": [stack.registry],
    }
    with LocalPlugin.launch(plugin_config=config) as p:
        yield p
    empty_namespace(stack.containerd_address, config["namespace"])


def empty_namespace(address: str, namespace: str) -> None:
    """Remove what the driver left in a test namespace (it should be only images)."""
    from nomad_ctr import Client

    with Client(address, namespace) as client:
        leftovers = [c.id for c in client.containers.list()]
        for c in client.containers.list():
            c.delete(force=True)
        for image in client.images.list():
            client.images.remove(image.name)
    assert leftovers == [], f"containers left behind in {namespace}: {leftovers}"


def job(image: str, config: str, extra: str = "") -> str:
    return (
        'job "lr" {\n  group "g" {\n    task "t" {\n      driver = "containerd-driver"\n'
        f'      config {{\n        image = "{image}"\n        {config}\n      }}\n{extra}\n'
        "      resources {\n        cpu = 100\n        memory = 64\n      }\n    }\n  }\n}\n"
    )


def test_exit_code_logs_and_env(plugin: LocalPlugin, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    task = parse_job(
        job(
            images.plain,
            'command = "sh"\n        args = ["-c", "echo out $GREETING $NOMAD_TASK_NAME $NOMAD_ALLOC_DIR; echo err >&2; exit 3"]',
            '      env {\n        GREETING = "hi-${NOMAD_JOB_ID}"\n      }',
        )
    )
    echoed: list[tuple[str, bytes]] = []
    with plugin.start_task(
        task, alloc_dir=tmp_path / "alloc", echo=lambda s, b: echoed.append((s, b))
    ) as run:
        result = run.wait(timeout=120)
    assert (result.exit_code, result.signal, result.oom_killed, result.err) == (3, 0, False, "")
    assert not result.successful
    assert run.stdout() == b"out hi-lr t /alloc\n"
    assert run.stderr() == b"err\n"
    assert b"".join(b for s, b in echoed if s == "stdout") == b"out hi-lr t /alloc\n"


def test_alloc_dirs_are_mounted(plugin: LocalPlugin, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    task = parse_job(
        job(
            images.plain,
            'command = "sh"\n        args = ["-c", "echo shared > /alloc/data/f; echo mine > /local/g; cat /secrets/s"]',
        )
    )
    config, paths = plugin.prepare_task(task, alloc_dir=tmp_path / "alloc")
    (paths.secrets_dir / "s").write_text("top\n")
    with plugin.start_task_config(config, paths=paths) as run:
        assert run.wait(timeout=120).exit_code == 0
    assert (paths.shared_dir / "data" / "f").read_text() == "shared\n"
    assert (paths.local_dir / "g").read_text() == "mine\n"
    assert run.stdout() == b"top\n"


def test_stop_uses_the_jobs_kill_signal(plugin: LocalPlugin, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = "trap 'echo got-usr1; exit 7' USR1; echo ready; while true; do sleep 0.1; done"
    task = parse_job(
        job(
            images.plain,
            f'command = "sh"\n        args = ["-c", "{script}"]',
            '      kill_signal = "SIGUSR1"\n      kill_timeout = "20s"',
        )
    )
    ready = threading.Event()
    with plugin.start_task(
        task, alloc_dir=tmp_path / "alloc", echo=lambda s, b: b"ready" in b and ready.set()
    ) as run:
        assert ready.wait(60)
        with pytest.raises(TimeoutError):
            run.wait(timeout=0.5)
        run.stop()
        result = run.wait(timeout=60)
    assert result.exit_code == 7
    assert b"got-usr1" in run.stdout()


def test_missing_image_is_a_driver_error(plugin: LocalPlugin, stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    task = parse_job(job(f"{stack.registry}/nomad-ctr/does-not-exist:latest", ""))
    with pytest.raises(DriverError) as info:
        plugin.start_task(task, alloc_dir=tmp_path / "alloc")
    assert info.value.rpc == "StartTask"
    assert "does-not-exist" in info.value.message


def test_stats_exec_inspect_and_signal(plugin: LocalPlugin, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = "trap 'echo got-hup' HUP; echo ready; while true; do sleep 0.1; done"
    task = parse_job(job(images.plain, f'command = "sh"\n        args = ["-c", "{script}"]'))
    ready = threading.Event()
    with plugin.start_task(
        task, alloc_dir=tmp_path / "alloc", echo=lambda s, b: b"ready" in b and ready.set()
    ) as run:
        assert ready.wait(60)
        status = run.inspect().task
        assert (status.id, status.name, status.state) == (run.id, "t", 1)  # RUNNING

        sample = next(iter(run.stats(interval=0.5)))
        assert sample.timestamp.seconds > 0
        assert sample.agg_resource_usage.memory.rss > 0

        out = run.exec(["sh", "-c", "echo $NOMAD_TASK_NAME; exit 3"], timeout=30)
        assert (out.stdout, out.result.exit_code) == (b"t\n", 3)

        run.signal("SIGHUP")
        deadline = time.monotonic() + 30
        while b"got-hup" not in run.stdout() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert b"got-hup" in run.stdout()
        run.stop(timeout=1)
        assert run.wait(timeout=60).signal in (9, 15)


def test_recover_after_a_plugin_crash(stack, images, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = {
        "containerd_runtime": "io.containerd.runc.v2",
        "address": stack.containerd_address,
        "namespace": f"localrun-rec-{uuid.uuid4().hex[:8]}",
    }
    script = "echo before; trap 'echo after; exit 5' TERM; while true; do sleep 0.1; done"
    task = parse_job(job(images.plain, f'command = "sh"\n        args = ["-c", "{script}"]'))
    first = LocalPlugin.launch(plugin_config=config)
    run = first.start_task(task, alloc_dir=tmp_path / "alloc")
    deadline = time.monotonic() + 60
    while b"before" not in run.stdout() and time.monotonic() < deadline:
        time.sleep(0.1)
    first.crash()

    handle = driver_pb2.TaskHandle()
    handle.CopyFrom(run.handle)
    handle.config.ClearField("msgpack_driver_config")  # what an agent restart keeps
    with LocalPlugin.launch(plugin_config=config) as second:
        recovered = second.recover_task(handle, previous=run)
        assert recovered.inspect().task.state == 1  # RUNNING
        recovered.stop(timeout=10)
        assert recovered.wait(timeout=60).exit_code == 5
        recovered.destroy()
    assert recovered.stdout() == b"before\nafter\n"  # logmon kept reading across the crash
    empty_namespace(stack.containerd_address, config["namespace"])
