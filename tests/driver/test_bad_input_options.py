"""Every task option's invalid values, through StartTask on one live plugin: each is
INVALID_ARGUMENT with a one-line message naming the option and the value, nothing is
created in containerd (containers, snapshots, images, leases), and the plugin keeps
serving (a valid task starts afterwards). reliability-security.md §3."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from driverkit import Alloc, Plugin, task_config
from test_bad_input_images import recoverable

from nomad_ctr import Client
from nomad_ctr._pb import driver_pb2

pytestmark = pytest.mark.driver

IMG = "127.0.0.1:5000/nomad-ctr/plain:latest"  # never pulled: validation comes first


def symlink_out(a: Alloc) -> None:
    (a.alloc_dir / a.task_name / "local" / "escape").symlink_to("/etc")


def mounts(**m: object) -> dict[str, object]:
    return {"mounts": [{"target": "/x", **m}]}


# (option values, message after "invalid task config: ", setup on the alloc[, TaskConfig fields
#  or a function that changes the TaskConfig])
ROWS: list[tuple[Any, ...]] = [
    ({"shm_size": "12q"}, 'shm_size: "12q" is not a size (e.g. "64k", "128m", "1g" or a number of bytes)', None),
    ({"shm_size": "2T"}, 'shm_size: "2T" must be at least 1k (1024 bytes) and at most 1T', None),
    ({"shm_size": "512"}, 'shm_size: "512" must be at least 1k (1024 bytes) and at most 1T', None),
    ({"cap_add": ["CAP_FOO"]}, 'cap_add[0]: "CAP_FOO" is not a Linux capability (e.g. "NET_ADMIN")', None),
    ({"cap_drop": ["chown", "nope"]}, 'cap_drop[1]: "nope" is not a Linux capability (e.g. "NET_ADMIN")', None),
    ({"cap_add": ["ALL"]}, 'cap_add[0]: "ALL" is not allowed here (use privileged = true)', None),
    ({"extra_hosts": ["nocolon"]}, 'extra_hosts[0]: "nocolon" is not "host:IP"', None),
    ({"extra_hosts": ["db:1.2.3"]}, 'extra_hosts[0]: "db:1.2.3" is not "host:IP" (bad IP address)', None),
    ({"extra_hosts": ["a b:10.0.0.1"]}, 'extra_hosts[0]: "a b:10.0.0.1" is not "host:IP"', None),
    (mounts(target="data", source="/tmp"), 'mounts[0].target: "data" must be an absolute path inside the container', None),
    (mounts(target="/proc/sys", source="/tmp"), 'mounts[0].target: "/proc/sys" must not be /dev or under /proc or /sys', None),
    (mounts(target="/a/../b", source="/tmp"), "mounts[0].target: \"/a/../b\" must not be / or contain '..'", None),
    (mounts(source="../../etc"), "mounts[0].source: \"../../etc\" must not contain '..'", None),
    (mounts(source="local/escape"), 'mounts[0].source: "local/escape" resolves outside the task directory', symlink_out),
    (mounts(source="/proc/self/fd/3"), 'mounts[0].source: "/proc/self/fd/3" names the driver\'s own process, not a host path', None),
    (mounts(type="nfs", source="/tmp"), 'mounts[0].type: "nfs" must be one of volume, bind, tmpfs', None),
    (mounts(source="/tmp", options=["rshared"]), 'mounts[0].options[0]: "rshared" is not an allowed volume mount option', None),
    (mounts(type="bind"), "mounts[0].source: is required for type bind", None),
    (mounts(type="tmpfs", options=["size=0"]), 'mounts[0].options[0]: "size=0" size=0 would make the tmpfs unlimited', None),
    (mounts(type="tmpfs", options=["mode=99"]), 'mounts[0].options[0]: "mode=99" mode must be octal, at most 7777', None),
    (mounts(type="tmpfs", options=["size=2T"]), 'mounts[0].options[0]: "size=2T" size must be at most 1T', None),
    (mounts(type="tmpfs", options=["size=0%"]),
     'mounts[0].options[0]: "size=0%" size in % of the host\'s memory must be from 1% to 100%', None),
    (mounts(type="tmpfs", options=["size=1.5g"]),
     'mounts[0].options[0]: "size=1.5g" size must be a whole number with an optional k, m, g or t', None),
    ({"pid_mode": "container:x"}, 'pid_mode: "container:x" must be "host" or unset', None),
    ({"pid_mode": "private"}, 'pid_mode: "private" must be "host" or unset', None),
    ({"pids_limit": -1}, "pids_limit: -1 must be between 1 and 4194304", None),
    ({"pids_limit": 0}, "pids_limit: 0 must be between 1 and 4194304", None),
    ({"seccomp_profile": "/nonexistent/profile.json"},
     'seccomp_profile: "/nonexistent/profile.json" cannot be read (No such file or directory)', None),
    ({"seccomp_profile": "/dev/zero"}, 'seccomp_profile: "/dev/zero" is not a regular file', None),
    ({"seccomp_profile": "/etc/hostname"}, 'seccomp_profile: "/etc/hostname" is not a JSON seccomp profile', None),
    ({"seccomp_profile": "profile.json"}, 'seccomp_profile: "profile.json" must be an absolute path', None),
    ({"seccomp": False, "seccomp_profile": "/p.json"}, 'seccomp_profile: "/p.json" is set but seccomp = false', None),
    ({"entrypoint": []}, "entrypoint: [] must not be an empty list", None),
    ({"cwd": "relative/dir"}, 'cwd: "relative/dir" must be an absolute path', None),
    ({"hostname": "a_b"}, 'hostname: "a_b" must be a host name of at most 63 characters (letters, digits, -, .)', None),
    ({"hostname": "h" * 64}, "hostname: \"" + "h" * 64 + "\" must be a host name of at most 63 characters", None),
    ({"devices": ["/etc/passwd"]}, 'devices[0]: "/etc/passwd" must be a device path under /dev/', None),
    ({"devices": ["/dev/nonexistent0"]}, 'devices[0]: "/dev/nonexistent0" cannot be used (No such file or directory)', None),
    ({"devices": ["/dev/shm"]}, 'devices[0]: "/dev/shm" is not a device node', None),
    (mounts(type="bind", source="/nonexistent/x"), 'mounts[0].source: "/nonexistent/x" does not exist on the host', None),
    ({"sysctl": {"kernel.randomize_va_space": "0"}},
     'sysctl: "kernel.randomize_va_space" is not namespaced (only net.*, fs.mqueue.* and IPC kernel.* sysctls are)', None),
    ({"sysctl": {"net.core.somaxconn": "1\n2"}}, 'sysctl.net.core.somaxconn: "1\\n2" must be one line of at most 4096 characters', None),
    ({"image_pull_timeout": "-5m"}, 'image_pull_timeout: "-5m" must not be signed (use e.g. "5m")', None),
    ({"args": ["ok", "a\x00b"]}, 'args[1]: "a\\x00b" must not contain a NUL character', None),
    (mounts(type="tmpfs", target="/local"),
     'mounts[0].target: "/local" is already mounted by a path the driver mounts', None),
    ({"mounts": [{"type": "tmpfs", "target": "/a"}, {"type": "tmpfs", "target": "/a/"}]},
     'mounts[1].target: "/a/" is already mounted by mounts[0].target', None),
    # the /etc files the network step generates: caught before the pull, not after it
    (mounts(type="tmpfs", target="/etc/hosts"), 'mounts[0].target: "/etc/hosts" is already mounted by a path the driver mounts', None),
    (mounts(type="tmpfs", target="/etc/hostname/"),
     'mounts[0].target: "/etc/hostname/" is already mounted by a path the driver mounts', None),
    (mounts(source="/etc/resolv.conf", target="/etc/resolv.conf"),
     'mounts[0].target: "/etc/resolv.conf" is already mounted by a path the driver mounts', None),
    ({"host_network": True, "host_dns": False, **mounts(source="/tmp", target="/etc/resolv.conf")},
     'mounts[0].target: "/etc/resolv.conf" is already mounted by a path the driver mounts', None),
    # what Nomad's task block supplies
    ({}, 'user: "bad user!" must be a name or uid, optionally :group or :gid', None, {"user": "bad user!"}),
    ({}, 'env: "A=B" is not an environment variable name', None, {"env": {"A=B": "1"}}),
    ({}, 'volume_mount[0]: "/tmp:rel" needs absolute host and task paths', None,
     {"mounts": [driver_pb2.Mount(task_path="rel", host_path="/tmp")]}),
    ({"mounts": [{"type": "tmpfs", "target": "/v"}]}, 'mounts[0].target: "/v" is already mounted by volume_mount[0]',
     None, {"mounts": [driver_pb2.Mount(task_path="/v", host_path="/tmp")]}),
    ({}, 'volume_mount[0]: "/etc/hosts" is already mounted by a path the driver mounts', None,
     {"mounts": [driver_pb2.Mount(task_path="/etc/hosts", host_path="/tmp")]}),
    # Nomad's network block: DNS values and port mappings, checked before the pull
    ({}, 'dns.servers[0]: "1.2.3" is not an IPv4 or IPv6 address', None,
     {"dns": driver_pb2.DNSConfig(servers=["1.2.3"])}),
    ({}, 'dns.searches[1]: "bad domain" is not a domain name', None,
     {"dns": driver_pb2.DNSConfig(servers=["10.0.0.2"], searches=["ok.example", "bad domain"])}),
    ({}, "resources.ports[1] (b): ports: host port 20080/tcp mapped twice", None,
     lambda t: t.resources.ports.extend([driver_pb2.PortMapping(label="a", value=20080),
                                         driver_pb2.PortMapping(label="b", value=20080, to=90)])),
    ({}, "resources.ports[0] (a): PortMapping.host_ip: not an IP address: 'nope'", None,
     lambda t: t.resources.ports.extend([driver_pb2.PortMapping(label="a", value=20080, host_ip="nope")])),
]


def ctr_list(client: Client, what: str) -> set[str]:
    """First column of `ctr <what> ls`, header dropped (not every list has -q)."""
    out = subprocess.run(["ctr", "--address", client.address, "-n", client.namespace, what, "ls"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return {line.split()[0] for line in out.splitlines()[1:] if line.strip()}


def containerd_objects(client: Client) -> dict[str, set[str]]:
    return {what: ctr_list(client, what) for what in ("containers", "snapshots", "images", "leases")}


def test_each_bad_option_is_refused_before_containerd(
    plugin: Plugin, alloc, ns_client: Client, images, tmp_path: Path
) -> None:
    before = containerd_objects(ns_client)
    wrong: list[str] = []
    for values, message, setup, *task_fields in ROWS:
        a = alloc()
        if setup:
            setup(a)
        fields = (task_fields or [{}])[0]
        task = a.task(task_config(image=IMG, command="true", **values), **({} if callable(fields) else fields))
        if callable(fields):
            fields(task)
        with pytest.raises(grpc.RpcError) as exc:
            plugin.start(task)
        err = exc.value
        got = (err.code(), err.details(), recoverable(err))
        want = (grpc.StatusCode.INVALID_ARGUMENT, "invalid task config: " + message, None)
        if got[0] != want[0] or got[2] is not None or not got[1].startswith(want[1]):
            wrong.append(f"{values!r}: got {got!r}, want {want!r}")
        assert "\n" not in err.details() and len(err.details()) < 512
    assert wrong == [], "\n".join(wrong)
    assert containerd_objects(ns_client) == before
    assert plugin.service.store.all() == []
    # still serving: healthy, and a valid task runs
    fp = plugin.driver.Fingerprint(driver_pb2.FingerprintRequest(), timeout=30)
    assert next(fp).health == driver_pb2.FingerprintResponse.HEALTHY
    fp.cancel()
    a = alloc()
    ok = a.task(task_config(image=images.plain, command="sh", args=["-c", "exit 6"]))
    plugin.start(ok)
    assert plugin.wait(ok.id).result.exit_code == 6
