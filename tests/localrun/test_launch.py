"""Launching the real containerd-driver executable the way Nomad does, and the setup
sequence, without containerd (the plugin reports unhealthy, which is its answer)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from nomad_ctr._pb import base_pb2, driver_pb2
from nomad_ctr.localrun import (
    DriverError,
    HclDecodeError,
    LocalPlugin,
    PluginStartError,
    parse_handshake,
)

pytestmark = pytest.mark.unit

NO_CONTAINERD = {
    "containerd_runtime": "io.containerd.runc.v2",
    "address": "/nonexistent/containerd.sock",
}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1|2|unix", "unrecognized remote plugin message"),
        ("2|2|unix|/x|grpc", "core protocol version 2 is not 1"),
        ("1|1|unix|/x|grpc", "app protocol 1"),
        ("1|2|udp|/x|grpc", "unsupported network 'udp'"),
        ("1|2|unix|/x", "plugin protocol 'netrpc'"),
        ("1|2|unix|rel/x|grpc", "is not absolute"),
    ],
)
def test_bad_handshakes_are_refused(line: str, message: str) -> None:
    with pytest.raises(PluginStartError, match=message):
        parse_handshake(line)


def test_good_handshake_with_a_go_style_trailing_bar() -> None:
    hs = parse_handshake("1|2|unix|/tmp/plugin1|grpc|\n")
    assert (hs.network, hs.address, hs.protocol) == ("unix", "/tmp/plugin1", "grpc")


def test_setup_sequence_against_the_real_plugin() -> None:
    with LocalPlugin.launch(plugin_config=NO_CONTAINERD) as plugin:
        assert plugin.info is not None and plugin.info.name == "containerd-driver"
        assert plugin.info.type == base_pb2.DRIVER
        assert plugin.health()
        fp = plugin.fingerprint
        assert fp is not None and fp.health != driver_pb2.FingerprintResponse.HEALTHY
        assert "/nonexistent/containerd.sock" in fp.health_description
        assert plugin.capabilities is not None
        assert plugin.capabilities.fs_isolation == driver_pb2.DriverCapabilities.IMAGE
        assert (
            plugin.task_config_schema is not None
            and "image" in plugin.task_config_schema.object.attributes
        )
        assert (
            plugin.driver_config is not None and plugin.driver_config.value["namespace"] == "nomad"
        )
        process = plugin.process
    assert process is not None and process.proc.returncode == 0  # Shutdown made it exit by itself


def test_the_plugin_sees_nomads_environment() -> None:
    # a fake plugin whose handshake address echoes the variables go-plugin hosts set
    from nomad_ctr.localrun.process import PluginProcess

    script = (
        "import os, time; e = os.environ; "
        "print('1|2|unix|/' + '/'.join([e['NOMAD_PLUGIN_MAGIC_COOKIE'], e['PLUGIN_PROTOCOL_VERSIONS'], "
        "e['PLUGIN_MIN_PORT'], e['PLUGIN_MAX_PORT']]) + '|grpc', flush=True); time.sleep(30)"
    )
    proc = PluginProcess.start([sys.executable, "-c", script], timeout=10)
    try:
        assert (
            proc.address
            == "/e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255/2/10000/25000"
        )
    finally:
        assert proc.kill(grace=0) != 0  # it was still sleeping: SIGKILLed


def test_plugin_config_errors_name_the_key_before_the_plugin_is_asked() -> None:
    with pytest.raises(HclDecodeError, match=r"config\.containerd_runtim: unsupported argument"):
        LocalPlugin.launch(plugin_config={"containerd_runtim": "x"})


def test_plugin_side_validation_errors_come_back_as_driver_errors() -> None:
    with pytest.raises(
        DriverError, match=r"SetConfig failed \(INVALID_ARGUMENT\): .*namespace"
    ) as info:
        LocalPlugin.launch(plugin_config={**NO_CONTAINERD, "namespace": "bad/ns"})
    assert info.value.rpc == "SetConfig"


def test_a_plugin_that_dies_before_the_handshake_is_reported() -> None:
    with pytest.raises(
        PluginStartError, match=r"exited \(status 3\) before we could connect: boom"
    ):
        LocalPlugin.launch(
            [sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"]
        )


def test_the_agent_file_must_have_the_plugin_block(tmp_path: Path) -> None:
    agent = tmp_path / "agent.hcl"
    agent.write_text('plugin "other" {}\n')
    with pytest.raises(DriverError, match=r"no plugin 'containerd-driver' block \(has: other\)"):
        LocalPlugin.launch(agent_config=agent)


def test_task_config_errors_name_the_task_and_key(tmp_path: Path) -> None:
    from nomad_ctr.localrun import parse_job

    job = parse_job(
        'job "j" { group "g" { task "web" {\n driver = "containerd-driver"\n config {\n image = "x"\n portz = 1\n }\n} } }'
    )
    with LocalPlugin.launch(plugin_config=NO_CONTAINERD) as plugin:
        with pytest.raises(
            HclDecodeError, match=r"^task 'web'\.config\.portz: unsupported argument"
        ):
            plugin.prepare_task(job, alloc_dir=tmp_path / "alloc")
        other = parse_job('job "j" { group "g" { task "t" {\n driver = "docker"\n} } }')
        with pytest.raises(DriverError, match="uses driver 'docker'"):
            plugin.prepare_task(other, alloc_dir=tmp_path / "alloc")


def test_prepare_task_fills_the_task_config_like_nomad(tmp_path: Path) -> None:
    from nomad_ctr.localrun import Allocation, parse_job

    job = parse_job(
        """job "j" { group "g" { task "web" {
          driver = "containerd-driver"
          config { image = "x" }
          env { WHERE = "${NOMAD_TASK_DIR}/x" }
          resources {
            cpu = 300
            memory = 64
            memory_max = 128
          }
        } } }"""
    )
    alloc = Allocation("0b3c8a5e-1111-2222-3333-444455556666")
    with LocalPlugin.launch(plugin_config=NO_CONTAINERD) as plugin:
        config, paths = plugin.prepare_task(job, alloc_dir=tmp_path / "alloc", alloc=alloc)
    prefix, task, suffix = config.id.split("/")
    assert (prefix, task, len(suffix)) == (alloc.id, "web", 8)
    assert config.env["WHERE"] == "/local/x"
    assert (
        config.env["NOMAD_ALLOC_ID"] == alloc.id
        and config.env["NOMAD_SHORT_ALLOC_ID"] == "0b3c8a5e"
    )
    assert config.env["NOMAD_CPU_LIMIT"] == "300" and config.env["NOMAD_MEMORY_MAX_LIMIT"] == "128"
    assert config.resources.allocated_resources.memory.memory_max_mb == 128
    assert config.resources.linux_resources.memory_limit_bytes == 128 * 1024 * 1024
    assert config.resources.linux_resources.cpu_shares == 300
    assert config.stdout_path == str(tmp_path / "alloc/alloc/logs/.web.stdout.fifo")
    assert config.alloc_dir == str(tmp_path / "alloc")
    assert (config.job_id, config.task_group_name, config.namespace) == ("j", "g", "default")
    assert config.msgpack_driver_config and paths.local_dir.is_dir()
    assert os.path.exists(config.stderr_path)
