"""hcldec-lite must produce the bytes real hcldec + go-cty produce: the Go harness
(tests/harness, which links hashicorp/hcl and go-cty) decodes the same job files
against the same running plugin's schema."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from nomad_ctr.localrun import LocalPlugin, load_job
from nomad_ctr.localrun.hclfile import evaluate_body
from nomad_ctr.localrun.process import default_plugin_command

pytestmark = pytest.mark.driver

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "harness"

CONFIGS = {
    "minimal": 'image = "busybox"',
    "lists and conversions": 'image = "a"\n    args = [1, 2.5, "x", true]\n    pids_limit = "12"\n    privileged = "true"',
    "non-binary decimal": 'image = "a"\n    pids_limit = 0.1',
    "blocks": (
        'image = "a"\n    mounts {\n      type = "bind"\n      source = "/tmp"\n      target = "/mnt"\n'
        '      options = ["ro"]\n    }\n    mounts {\n      target = "/v"\n      source = "vol"\n    }\n'
        '    auth {\n      username = "u"\n      password = "p"\n    }'
    ),
    "any-typed option, block form": 'image = "a"\n    sysctl {\n      x = "1"\n    }',
    "any-typed option, object form": (
        'image = "a"\n    sysctl = { "net.core.somaxconn" = 16, "b" = { c = [1, "x", true] } }'
    ),
    "heredoc and escapes": 'image = "a"\n    command = <<EOT\nline "one"\n  two \\n\nEOT\n    cwd = "tab\\there $${lit}"',
    "interpolation": 'image = "a"\n    hostname = "${NOMAD_TASK_NAME}-${NOMAD_JOB_ID}"',
}


@pytest.fixture(scope="module")
def harness() -> Path:
    subprocess.run(["bash", str(HARNESS / "build.sh")], check=True, capture_output=True)
    return HARNESS / "nomad-harness"


def write_job(path: Path, config: str) -> Path:
    path.write_text(
        'job "vs" {\n  group "g" {\n    task "t" {\n      driver = "containerd-driver"\n'
        f"      config {{\n    {config}\n      }}\n    }}\n  }}\n}}\n"
    )
    return path


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_bytes_as_hcldec(harness: Path, tmp_path: Path, stack: object, name: str) -> None:
    agent = tmp_path / "agent.hcl"
    agent.write_text(
        'plugin "containerd-driver" {\n  config {\n    containerd_runtime = "io.containerd.runc.v2"\n  }\n}\n'
    )
    job = write_job(tmp_path / "job.nomad", CONFIGS[name])
    out = subprocess.run(
        [
            str(harness),
            "schema-decode",
            "--plugin",
            default_plugin_command()[0],
            *[f"--plugin-arg={a}" for a in default_plugin_command()[1:]],
            "--agent",
            str(agent),
            "--job",
            str(job),
            "--task",
            "t",
            "--log-level",
            "error",
            "--allow-unhealthy",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    doc = json.loads(out.stdout)
    assert doc.get("ok"), doc.get("message")
    go_bytes = base64.b64decode(doc["msgpack_b64"])

    task = load_job(job)
    with LocalPlugin.launch(agent_config=agent) as plugin:
        variables = {"NOMAD_TASK_NAME": "t", "NOMAD_JOB_ID": "vs"}
        ours = plugin.encode_task_config(evaluate_body(task.config, variables, "config")).msgpack
    assert ours == go_bytes
