"""The two hclspec schemas the plugin publishes: the agent's `plugin "containerd-driver"
{ config { ... } }` block (BasePlugin.ConfigSchema) and the job's task `config { ... }`
block (Driver.TaskConfigSchema). Option names follow the Roblox driver, so its users'
jobs keep working; config.py turns the decoded values into typed dataclasses.
"""

from __future__ import annotations

from nomad_ctr.driver.cty import BOOL, DYNAMIC, NUMBER, STRING, CtyType, ListType
from nomad_ctr.driver.hclspec import (
    Spec,
    attr,
    block,
    block_list,
    default,
    literal,
    obj,
)

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_BRIDGE_SUBNET",
    "DEFAULT_CNI_BIN_DIR",
    "DEFAULT_CNI_CONF_DIR",
    "DEFAULT_IMAGE_PULL_TIMEOUT",
    "DEFAULT_NAMESPACE",
    "driver_config_spec",
    "task_config_spec",
]

DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
DEFAULT_NAMESPACE = "nomad"
DEFAULT_CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
# our own conflist directory, so we never pick up (or clobber) other tools' networks
DEFAULT_CNI_CONF_DIR = "/etc/nomad-ctr/cni"
# Nomad's own bridge network uses 172.26.64.0/20; ours sits next to it, not on it
DEFAULT_BRIDGE_SUBNET = "172.26.80.0/20"
DEFAULT_IMAGE_PULL_TIMEOUT = "5m"

_LIST_STRING: CtyType = ListType(STRING)


def _opt(name: str, ty: CtyType, fallback: object) -> Spec:
    """An optional attribute with a default Nomad fills in before we see the value."""
    return default(attr(name, ty), literal(fallback))


def _auth_spec(*, registry: bool = False) -> Spec:
    fields = {
        "username": attr("username", STRING, required=True),
        "password": attr("password", STRING, required=True),
    }
    if registry:  # the agent's credentials name their registry; a task's go to its image's
        fields["registry"] = attr("registry", STRING)
    return block("auth", obj(**fields))


def driver_config_spec() -> Spec:
    return obj(
        enabled=_opt("enabled", BOOL, True),
        containerd_runtime=attr("containerd_runtime", STRING, required=True),
        stats_interval=attr("stats_interval", STRING),
        allow_privileged=_opt("allow_privileged", BOOL, True),
        auth=_auth_spec(registry=True),
        address=_opt("address", STRING, DEFAULT_ADDRESS),
        namespace=_opt("namespace", STRING, DEFAULT_NAMESPACE),
        insecure_registries=attr("insecure_registries", _LIST_STRING),
        cni_bin_dir=_opt("cni_bin_dir", STRING, DEFAULT_CNI_BIN_DIR),
        cni_conf_dir=_opt("cni_conf_dir", STRING, DEFAULT_CNI_CONF_DIR),
        bridge_subnet=_opt("bridge_subnet", STRING, DEFAULT_BRIDGE_SUBNET),
    )


def _mount_spec() -> Spec:
    return obj(
        type=_opt("type", STRING, "volume"),
        target=attr("target", STRING, required=True),
        source=attr("source", STRING),
        options=attr("options", _LIST_STRING),
    )


def task_config_spec() -> Spec:
    return obj(
        image=attr("image", STRING, required=True),
        image_pull_timeout=_opt("image_pull_timeout", STRING, DEFAULT_IMAGE_PULL_TIMEOUT),
        command=attr("command", STRING),
        args=attr("args", _LIST_STRING),
        entrypoint=attr("entrypoint", _LIST_STRING),
        cwd=attr("cwd", STRING),
        privileged=_opt("privileged", BOOL, False),
        pids_limit=attr("pids_limit", NUMBER),
        pid_mode=attr("pid_mode", STRING),
        hostname=attr("hostname", STRING),
        host_dns=_opt("host_dns", BOOL, True),
        seccomp=_opt("seccomp", BOOL, True),
        seccomp_profile=attr("seccomp_profile", STRING),
        shm_size=attr("shm_size", STRING),
        # `any`, so both spellings decode with plain hcldec: `sysctl = { "k" = "v" }`
        # arrives as an object, block syntax `sysctl { ... }` as a tuple of objects;
        # list(map(string)) would refuse the first. Values may be numbers; config.py
        # checks the shape and turns the values into strings.
        sysctl=attr("sysctl", DYNAMIC),
        readonly_rootfs=_opt("readonly_rootfs", BOOL, False),
        host_network=_opt("host_network", BOOL, False),
        extra_hosts=attr("extra_hosts", _LIST_STRING),
        cap_add=attr("cap_add", _LIST_STRING),
        cap_drop=attr("cap_drop", _LIST_STRING),
        devices=attr("devices", _LIST_STRING),
        auth=_auth_spec(),
        mounts=block_list("mounts", _mount_spec()),
    )
