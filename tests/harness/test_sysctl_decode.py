"""`sysctl` is published as `any`, so both spellings users write get through plain
hcldec (as in Nomad) and our parser reads the go-cty bytes: a map (an object, values
strings or numbers) and a list of maps (a tuple of objects). Shapes that are not maps
pass hcldec and are refused by the parser with the field named."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest

from nomad_ctr.driver.config import ConfigError, parse_task_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))

import harness as nh

pytestmark = pytest.mark.driver


def decode(tmp_path: Path, sysctl_hcl: str) -> tuple[dict[str, Any], bytes]:
    agent = nh.write_agent_config(tmp_path / "agent.hcl", address="/run/containerd/containerd.sock")
    job = nh.write_job(tmp_path / "job.nomad", image="busybox", config_hcl=sysctl_hcl)
    res = nh.run_harness(
        "schema-decode",
        *nh.plugin_flags(),
        "--agent",
        str(agent),
        "--job",
        str(job),
        "--task",
        "main",
        "--allow-unhealthy",
        "--log-level",
        "error",
        timeout=60,
    ).check()
    return res.data, base64.b64decode(res.data["msgpack_b64"])


def test_published_type_is_any(tmp_path: Path) -> None:
    data, _ = decode(tmp_path, "")
    assert data["spec"]["object"]["attributes"]["sysctl"]["Attr"]["type"] == "any"
    assert data["type"][1]["sysctl"] == "dynamic"  # absent: a plain nil


@pytest.mark.parametrize(
    ("hcl", "cty_type", "expected"),
    [
        (
            'sysctl = { "net.core.somaxconn" = "16384", "net.ipv4.ip_forward" = 1 }',
            ["object", {"net.core.somaxconn": "string", "net.ipv4.ip_forward": "number"}],
            {"net.core.somaxconn": "16384", "net.ipv4.ip_forward": "1"},
        ),
        (
            'sysctl = [{ "net.core.somaxconn" = 16384 }, { "kernel.shmmax" = "1024" }]',
            [
                "tuple",
                [
                    ["object", {"net.core.somaxconn": "number"}],
                    ["object", {"kernel.shmmax": "string"}],
                ],
            ],
            {"net.core.somaxconn": "16384", "kernel.shmmax": "1024"},
        ),
        (
            # block syntax: only identifiers as names, so no dotted sysctl fits; it
            # still decodes (a tuple of one object) and the parser names the key
            "sysctl {\n  fs_mqueue = 1\n}",
            ["tuple", [["object", {"fs_mqueue": "number"}]]],
            None,
        ),
    ],
)
def test_spellings(
    tmp_path: Path, hcl: str, cty_type: list[Any], expected: dict[str, str] | None
) -> None:
    data, raw = decode(tmp_path, hcl)
    assert data["type"][1]["sysctl"] == cty_type
    if expected is None:
        with pytest.raises(ConfigError, match=r'sysctl: "fs_mqueue" is not a sysctl name'):
            parse_task_config(raw)
    else:
        assert dict(parse_task_config(raw).sysctl) == expected


@pytest.mark.parametrize(
    ("hcl", "message"),
    [
        ('sysctl = "net.core.somaxconn=1"', "must be a map like"),
        (
            'sysctl = { "net.core.somaxconn" = true }',
            "sysctl.net.core.somaxconn: true must be a string",
        ),
        ('sysctl = { "net.core.somaxconn" = 1.5 }', "must be a string"),
        ('sysctl = { "vm.swappiness" = "1" }', "is not namespaced"),
    ],
)
def test_bad_shapes_pass_hcldec_and_are_refused(tmp_path: Path, hcl: str, message: str) -> None:
    _, raw = decode(tmp_path, hcl)
    with pytest.raises(ConfigError, match="^invalid task config: sysctl") as err:
        parse_task_config(raw)
    assert message in str(err.value)
