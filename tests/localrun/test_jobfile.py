"""Job and agent files: what localrun reads from them, Nomad's defaults, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nomad_ctr.localrun.hclfile import HclError
from nomad_ctr.localrun.jobfile import (
    load_agent,
    load_job,
    parse_agent,
    parse_duration,
    parse_job,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

JOB = """
job "web" {
  namespace = "team"
  datacenters = ["east", "west"]
  meta { owner = "ops" }
  group "front" {
    task "nginx" {
      driver = "containerd-driver"
      user = "1000:1000"
      kill_signal = "SIGQUIT"
      kill_timeout = "1m30s"
      config { image = "nginx" }
      env { A = "1" }
      resources {
        cpu = 250
        memory = 128
        memory_max = 256
      }
    }
    task "sidecar" {
      driver = "containerd-driver"
      config { image = "busybox" }
    }
  }
}
"""


def test_task_fields_and_defaults() -> None:
    t = parse_job(JOB, "nginx")
    assert (t.job_id, t.job_name, t.group, t.name, t.namespace, t.datacenter) == (
        "web",
        "web",
        "front",
        "nginx",
        "team",
        "east",
    )
    assert (t.user, t.kill_signal, t.kill_timeout) == ("1000:1000", "SIGQUIT", 90.0)
    assert (t.cpu, t.memory_mb, t.memory_max_mb) == (250, 128, 256)
    assert t.meta == {"owner": "ops"}
    assert t.config is not None and "image" in t.config.attributes

    s = parse_job(JOB, "sidecar")
    assert (s.cpu, s.memory_mb, s.memory_max_mb, s.kill_timeout, s.kill_signal) == (
        100,
        300,
        0,
        5.0,
        "",
    )


def test_choosing_a_task() -> None:
    with pytest.raises(HclError, match=r"several tasks \(nginx, sidecar\); choose one with --task"):
        parse_job(JOB)
    with pytest.raises(HclError, match=r"no task 'db' in job 'web' \(tasks: nginx, sidecar\)"):
        parse_job(JOB, "db")


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ("cpu = -1", r"resources\.cpu: must not be negative"),
        ('memory = "lots"', r"resources\.memory: a whole number is required"),
        ("cpu = 100\n cores = 1", r"set either cpu or cores"),
        ("memory = 256\n memory_max = 128", r"memory_max: 128 is below memory \(256\)"),
    ],
)
def test_bad_resources_are_named(resources: str, message: str) -> None:
    job = f'job "j" {{ group "g" {{ task "t" {{\n driver = "d"\n resources {{\n {resources}\n }}\n}} }} }}'
    with pytest.raises(HclError, match=message):
        parse_job(job)


def test_bad_kill_timeout_is_named() -> None:
    job = 'job "j" { group "g" { task "t" {\n driver = "d"\n kill_timeout = "soon"\n} } }'
    with pytest.raises(HclError, match=r"kill_timeout: 'soon' is not a duration"):
        parse_job(job)


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("1m30s", 90), ("250ms", 0.25), ("1h", 3600), ("0", 0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_example_files_parse() -> None:
    task = load_job(REPO / "example" / "hello.nomad")
    assert task.driver == "containerd-driver"
    agent = load_agent(REPO / "example" / "agent.hcl")
    assert agent.plugin_dir == "/opt/nomad/plugins"
    block = agent.plugins["containerd-driver"]
    assert (
        block.config is not None and block.config["containerd_runtime"] == "io.containerd.runc.v2"
    )


def test_agent_plugin_args_and_max_kill_timeout() -> None:
    agent = parse_agent(
        'client { max_kill_timeout = "10s" }\nplugin "p" {\n args = ["-v"]\n config { a = 1 }\n}\nplugin "q" {}\n'
    )
    assert agent.max_kill_timeout == 10.0
    assert agent.plugins["p"].args == ("-v",) and agent.plugins["p"].config == {"a": 1}
    assert agent.plugins["q"].config is None
