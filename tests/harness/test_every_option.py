"""Every task and driver option through the path Nomad takes: HCL decoded by hcldec with
the plugin's own schema (nomad-harness), sent as cty msgpack, parsed by the plugin; then
the options the in-process tests cover one by one, together in one real container
started by the harness.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest
from test_nomad_harness import agent, leftovers, namespace, NOTHING_LEFT, run  # noqa: F401 - fixtures

from nomad_ctr.driver.config import (
    ExtraHost,
    MountConfig,
    RegistryAuth,
    TaskConfig,
    parse_driver_config,
    parse_task_config,
)
from nomad_ctr.driver.config_schema import driver_config_spec, task_config_spec
from nomad_ctr.driver.hclspec import implied_type

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "driver"))

import harness as nh  # noqa: E402

pytestmark = [pytest.mark.driver, pytest.mark.integration]

EVERY_TASK_OPTION: dict[str, Any] = {
    "image": "127.0.0.1:5000/nomad-ctr/plain:v1",
    "image_pull_timeout": "90s",
    "command": "sh",
    "args": ["-c", "echo hi"],
    "entrypoint": ["/bin/env", "-i"],
    "cwd": "/srv/work",
    "privileged": True,
    "pids_limit": 64,
    "pid_mode": "host",
    "hostname": "web-1",
    "host_dns": False,
    "seccomp": True,
    "seccomp_profile": "/etc/nomad-ctr/seccomp.json",
    "shm_size": "128m",
    "sysctl": {"net.core.somaxconn": "512"},
    "readonly_rootfs": True,
    "host_network": False,  # true refuses the sysctl (it would change the host's)
    "extra_hosts": ["db:10.0.0.5"],
    "cap_add": ["net_admin"],
    "cap_drop": ["CAP_MKNOD"],
    "devices": ["/dev/fuse"],
}
AUTH_AND_MOUNTS_HCL = """\
auth {
  username = "deploy"
  password = "hunter2-every-option"
}
mounts = [
  { type = "bind", source = "local/conf", target = "/etc/app", options = ["rbind", "ro"] },
  { target = "/data", source = "/srv/data" },
  { type = "tmpfs", target = "/scratch", options = ["size=8m"] },
]
"""


def test_every_task_option_decodes_as_nomad_sends_it(agent: Path, tmp_path: Path) -> None:  # noqa: F811
    job = nh.write_job(tmp_path / "job.nomad", image=EVERY_TASK_OPTION["image"],
                       config={k: v for k, v in EVERY_TASK_OPTION.items() if k != "image"},
                       config_hcl=AUTH_AND_MOUNTS_HCL)
    data = nh.schema_decode(job, "main", agent=agent).check().data
    # the job sets every attribute and block of the schema: a new option must join it
    schema = dict(implied_type(task_config_spec()).attrs)  # type: ignore[attr-defined]
    assert {k for k, v in data["value"].items() if v is not None} == set(schema)

    cfg = parse_task_config(base64.b64decode(data["msgpack_b64"]))
    assert cfg == TaskConfig(
        image="127.0.0.1:5000/nomad-ctr/plain:v1", image_pull_timeout=90.0, command="sh",
        args=("-c", "echo hi"), entrypoint=("/bin/env", "-i"), cwd="/srv/work", privileged=True,
        pids_limit=64, pid_mode="host", hostname="web-1", host_dns=False, seccomp=True,
        seccomp_profile="/etc/nomad-ctr/seccomp.json", shm_size=128 << 20,
        sysctl={"net.core.somaxconn": "512"}, readonly_rootfs=True, host_network=False,
        extra_hosts=(ExtraHost("db", "10.0.0.5"),), cap_add=("CAP_NET_ADMIN",), cap_drop=("CAP_MKNOD",),
        devices=("/dev/fuse",), auth=RegistryAuth("deploy", "hunter2-every-option"),
        mounts=(MountConfig("bind", "/etc/app", "local/conf", ("rbind", "ro")),
                MountConfig("volume", "/data", "/srv/data"),
                MountConfig("tmpfs", "/scratch", None, ("size=8m",))),
    )


def test_every_driver_option_decodes_as_nomad_sends_it(tmp_path: Path) -> None:
    extra = {"stats_interval": "3s", "allow_privileged": False, "address": "/run/other/containerd.sock",
             "namespace": "jobs", "insecure_registries": ["registry.internal:5000"],
             "cni_bin_dir": "/opt/cni/bin", "cni_conf_dir": "/etc/cni/nomad", "bridge_subnet": "10.77.0.0/24"}
    hcl = 'auth {\n  username = "pull"\n  password = "pw-every-option"\n  registry = "registry.internal:5000"\n}\n'
    agent_file = nh.write_agent_config(tmp_path / "agent.hcl", stats_interval=None, extra=extra, extra_hcl=hcl)
    data = nh.agent_config(agent_file).check().data  # decoded, and taken by SetConfig
    schema = dict(implied_type(driver_config_spec()).attrs)  # type: ignore[attr-defined]
    assert {k for k, v in data["value"].items() if v is not None} == set(schema)
    cfg = parse_driver_config(base64.b64decode(data["msgpack_b64"]))
    assert cfg.auth == RegistryAuth("pull", "pw-every-option", "registry.internal:5000")
    assert (cfg.stats_interval, cfg.allow_privileged, cfg.address, cfg.namespace) == (
        3.0, False, "/run/other/containerd.sock", "jobs")
    assert (cfg.insecure_registries, cfg.cni_bin_dir, cfg.cni_conf_dir, str(cfg.bridge_subnet)) == (
        ("registry.internal:5000",), "/opt/cni/bin", "/etc/cni/nomad", "10.77.0.0/24")
    assert msgpack.unpackb(base64.b64decode(data["msgpack_b64"]), raw=False) == data["value"]


def test_options_together_in_one_container(agent: Path, tmp_path: Path, images: Any,  # noqa: F811
                                           stack: Any, namespace: str) -> None:  # noqa: F811
    profile = tmp_path / "no-chmod.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chmod", "fchmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }))
    script = "; ".join([
        'echo "cwd=$(pwd)"',
        'echo "pid=$$"',
        "df -k /dev/shm | tail -1 | awk '{print \"shm=\" $2}'",
        "df -k /scratch | tail -1 | awk '{print \"scratch=\" $2}'",
        'echo "hostname=$(hostname)"',
        'echo "seccomp=$(grep ^Seccomp: /proc/self/status | cut -f2)"',
        "touch /tmp/f; chmod 600 /tmp/f 2>/dev/null && echo chmod=allowed || echo chmod=refused",
        'echo "resolv_ro=$(grep " /etc/resolv.conf " /proc/mounts | grep -c "[ ,]ro[ ,]")"',
        "touch /rootfs-write 2>/dev/null && echo rootfs=rw || echo rootfs=ro",
    ])
    job = nh.write_job(
        tmp_path / "job.nomad", image=images.plain, memory=64, memory_max=-1,
        config={"command": "sh", "args": ["-c", script], "cwd": "/srv/new/dir", "pid_mode": "host",
                "shm_size": "32m", "seccomp_profile": str(profile),
                "readonly_rootfs": True, "image_pull_timeout": "2m"},
        config_hcl='mounts = [ { type = "tmpfs", target = "/scratch", options = ["size=4m"] } ]\n',
    )
    data = run(agent, job, tmp_path)
    assert data["result"]["exit_code"] == 0, data
    facts = dict(line.split("=", 1) for line in data["stdout"].splitlines())
    task = data["task"]
    assert facts == {
        "cwd": "/srv/new/dir",  # created in the image's rootfs even though it is read-only
        "pid": facts["pid"],
        "shm": str(32 * 1024),
        "scratch": str(4 * 1024),
        # the default hostname: task name and the alloc id's first 8 characters
        "hostname": f"main-{task['alloc_id'][:8]}",
        "seccomp": "2",
        "chmod": "refused",  # the profile file, not only the default filter
        "resolv_ro": "1",  # host_dns defaults on: the host's resolv.conf, read-only
        "rootfs": "ro",
    }
    assert int(facts["pid"]) > 1  # pid_mode = "host": the shell is not PID 1 of a new namespace
    assert leftovers(stack.containerd_address, namespace) == NOTHING_LEFT
