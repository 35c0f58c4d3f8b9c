"""ContainerSpec, Mount, Device: validation names the field and value; JSON for the bridge."""

from __future__ import annotations

import pytest

from nomad_ctr import ContainerSpec, Device, Mount, errors
from nomad_ctr.spec import CAPABILITIES, parse_size

pytestmark = pytest.mark.unit


def test_default_spec_sends_nothing() -> None:
    assert ContainerSpec().to_bridge() == {}


def test_full_spec_json() -> None:
    spec = ContainerSpec(
        args=["/bin/sh", "-c", "echo hi"],
        env={"A": "1", "B": "x=y"},
        cwd="/srv",
        user="1000:1000",
        hostname="web-1",
        mounts=[Mount.bind("/data", "/mnt/data", readonly=True), Mount.tmpfs("/tmp", size="16m")],
        cap_add=["net_admin", "CAP_SYS_TIME"],
        cap_drop=["mknod"],
        devices=[Device("/dev/fuse")],
        memory_limit="256m",
        memory_reservation=64 << 20,
        memory_swap=-1,
        cpu_shares=512,
        cpuset_cpus="0-1",
        pids_limit=100,
        sysctls={"net.ipv4.ip_forward": 1},
        annotations={"a": "b"},
        no_new_privileges=True,
        readonly_rootfs=True,
        shm_size="64m",
    )
    out = spec.to_bridge()
    assert out["args"] == ["/bin/sh", "-c", "echo hi"]
    assert out["env"] == ["A=1", "B=x=y"]
    assert out["user"] == "1000:1000"
    assert out["mounts"][0] == {
        "type": "bind", "source": "/data", "destination": "/mnt/data", "options": ["rbind", "ro"],
    }
    assert out["mounts"][1]["options"][-1] == f"size={16 << 20}"
    assert out["cap_add"] == ["CAP_NET_ADMIN", "CAP_SYS_TIME"]
    assert out["cap_drop"] == ["CAP_MKNOD"]
    assert out["devices"] == [
        {"host_path": "/dev/fuse", "container_path": "/dev/fuse", "permissions": "rwm"}
    ]
    assert out["memory_limit"] == 256 << 20
    assert out["memory_swap"] == -1
    assert out["shm_size"] == 64 << 20
    assert out["sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert out["no_new_privileges"] is True
    assert "privileged" not in out and "host_network" not in out


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"args": "sh -c true"}, "args", "sh -c true"),
        ({"args": []}, "args", "[]"),
        ({"args": ["sh", 3]}, "args[1]", "3"),
        ({"args": ["sh"], "entrypoint": ["x"]}, "args", "sh"),
        ({"env": {"A=B": "1"}}, "env key", "A=B"),
        ({"env": {"A": None}}, "env['A']", "None"),
        ({"cwd": "relative/dir"}, "cwd", "relative/dir"),
        ({"user": "root user"}, "user", "root user"),
        ({"hostname": "bad_host!"}, "hostname", "bad_host!"),
        ({"hostname": "a" * 70}, "hostname", "aaaa"),
        ({"netns_path": "/run/netns/x", "host_network": True}, "netns_path", "/run/netns/x"),
        ({"cap_add": ["CAP_FLY"]}, "cap_add[0]", "CAP_FLY"),
        ({"cap_drop": "ALL"}, "cap_drop", "ALL"),
        ({"privileged": "yes"}, "privileged", "yes"),
        ({"memory_limit": 100}, "memory_limit", "100"),
        ({"memory_limit": "lots"}, "memory_limit", "lots"),
        ({"memory_limit": "64m", "memory_reservation": "128m"}, "memory_reservation", str(128 << 20)),
        ({"memory_swap": "1g"}, "memory_swap", str(1 << 30)),
        ({"memory_limit": "64m", "memory_swap": "32m"}, "memory_swap", str(32 << 20)),
        ({"cpu_shares": 1}, "cpu_shares", "1"),
        ({"cpu_period": 10}, "cpu_period", "10"),
        ({"cpuset_cpus": "0-a"}, "cpuset_cpus", "0-a"),
        ({"pids_limit": 0}, "pids_limit", "0"),
        ({"oom_score_adj": 2000}, "oom_score_adj", "2000"),
        ({"sysctls": {"bad key": "1"}}, "sysctls key", "bad key"),
        ({"seccomp_profile": "profile.json"}, "seccomp_profile", "profile.json"),
        ({"mounts": ["/a:/b"]}, "mounts", "/a:/b"),
        ({"mounts": [{"type": "bind", "source": "/a"}]}, "mounts[0]", "bind"),
        ({"mounts": [Mount.bind("/a", "/x"), Mount.bind("/b", "/x/")]}, "mounts[1].destination", "/x"),
        ({"shm_size": 0}, "shm_size", "0"),
    ],
)
def test_invalid_fields_name_field_and_value(kwargs: dict, field: str, value: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        ContainerSpec(**kwargs)
    message = str(info.value)
    assert message.startswith(field), message
    assert value in message, message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: Mount("bind", "relative", "/x"), "mount.source"),
        (lambda: Mount("tmpfs", "tmpfs", "x"), "mount.destination"),
        (lambda: Mount("Bad Type", "s", "/x"), "mount.type"),
        (lambda: Mount("bind", "/a", "/b", "ro"), "mount.options"),
        (lambda: Device("dev/null"), "device.host_path"),
        (lambda: Device("/dev/null", permissions="rx"), "device.permissions"),
        (lambda: Device("/dev/null", permissions="rr"), "device.permissions"),
    ],
)
def test_mount_and_device_validate(factory, field: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=f"^{field}="):
        factory()


def test_spec_is_frozen_and_replace_validates() -> None:
    spec = ContainerSpec(args=["true"])
    with pytest.raises(AttributeError):
        spec.args = ("false",)  # type: ignore[misc]
    changed = spec.replace(env={"X": "1"})
    assert changed.env == {"X": "1"} and changed.args == ("true",)
    assert spec.env == {}
    with pytest.raises(errors.InvalidArgument, match="^cwd="):
        spec.replace(cwd="nope")
    with pytest.raises(errors.InvalidArgument, match="^colour="):
        spec.replace(colour="blue")


def test_spec_copies_caller_containers() -> None:
    env = {"A": "1"}
    args = ["echo", "x"]
    spec = ContainerSpec(args=args, env=env)
    env["A"] = "2"
    args.append("y")
    assert spec.env == {"A": "1"} and spec.args == ("echo", "x")


def test_mounts_from_dicts_and_equality() -> None:
    spec = ContainerSpec(mounts=[{"type": "tmpfs", "source": "tmpfs", "destination": "/run"}])
    assert spec.mounts == (Mount("tmpfs", "tmpfs", "/run"),)
    assert ContainerSpec(args=["a"]) == ContainerSpec(args=("a",))


def test_cap_all_expands_and_user_int() -> None:
    spec = ContainerSpec(cap_drop=["all"], user=1000)
    assert spec.to_bridge()["cap_drop"] == sorted(CAPABILITIES)
    assert spec.user == "1000"


def test_empty_command_kept() -> None:
    assert ContainerSpec(entrypoint=["/bin/app"], command=[]).to_bridge() == {
        "entrypoint": ["/bin/app"], "command": [],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512", 512), ("4k", 4096), ("64m", 64 << 20), ("1GiB", 1 << 30), ("2g", 2 << 30), (7, 7)],
)
def test_parse_size(text, expected: int) -> None:
    assert parse_size(text, "x") == expected


@pytest.mark.parametrize("bad", ["", "1.5g", "ten", "5mb2", True, None])
def test_parse_size_rejects(bad) -> None:
    with pytest.raises(errors.InvalidArgument, match="^size="):
        parse_size(bad, "size")
