"""Driver and task config: schema/dataclass agreement, defaults, value syntaxes, and the
exact one-line errors bad input gets (reliability-security.md §3)."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from decimal import Decimal
from typing import Any

import msgpack
import pytest

from nomad_ctr.driver import cty
from nomad_ctr.driver.config import (
    ConfigError,
    DriverConfig,
    ExtraHost,
    MountConfig,
    TaskConfig,
    check_task_allowed,
    parse_driver_config,
    parse_task_config,
)
from nomad_ctr.driver.config_schema import driver_config_spec, task_config_spec
from nomad_ctr.driver.config_values import (
    normalize_capability,
    parse_duration,
    parse_size,
    show,
)
from nomad_ctr.driver.hclspec import implied_type

pytestmark = pytest.mark.unit

TASK_TYPE = implied_type(task_config_spec())
DRIVER_TYPE = implied_type(driver_config_spec())


def nomad_type(values: dict[str, Any], spec_type: cty.CtyType) -> cty.ObjectType:
    """The type Nomad encodes a decoded config with: the value's own, so an `any`
    attribute (sysctl) takes its value's concrete type and gets no dynamic wrapper."""
    assert isinstance(spec_type, cty.ObjectType)
    return cty.ObjectType.of(
        {
            k: cty.implied_type_of(values.get(k)) if t == cty.DYNAMIC else t
            for k, t in spec_type.attrs
        }
    )


def task(**values: Any) -> TaskConfig:
    values.setdefault("image", "busybox:1.36")
    return parse_task_config(cty.encode(values, nomad_type(values, TASK_TYPE)))


def driver(**values: Any) -> DriverConfig:
    values.setdefault("containerd_runtime", "io.containerd.runc.v2")
    return parse_driver_config(cty.encode(values, nomad_type(values, DRIVER_TYPE)))


def task_error(**values: Any) -> str:
    with pytest.raises(ConfigError) as err:
        task(**values)
    return str(err.value)


def driver_error(**values: Any) -> str:
    with pytest.raises(ConfigError) as err:
        driver(**values)
    return str(err.value)


# ---- schema and dataclasses agree ----------------------------------------------------------


def test_schema_attributes_match_dataclass_fields() -> None:
    assert set(task_config_spec().object.attributes) == {f.name for f in dataclasses.fields(TaskConfig)}
    assert set(driver_config_spec().object.attributes) == {
        f.name for f in dataclasses.fields(DriverConfig)
    }


def test_defaults_match_schema_literals() -> None:
    attrs = driver_config_spec().object.attributes
    cfg = driver()
    assert attrs["namespace"].default.default.literal.value == f'"{cfg.namespace}"'
    assert attrs["address"].default.default.literal.value == f'"{cfg.address}"'
    assert attrs["bridge_subnet"].default.default.literal.value == f'"{cfg.bridge_subnet}"'
    assert attrs["allow_privileged"].default.default.literal.value == "true"
    assert task_config_spec().object.attributes["mounts"].block_list.nested.object.attributes[
        "type"
    ].default.default.literal.value == '"volume"'


# ---- driver config ---------------------------------------------------------------------------


def test_driver_defaults() -> None:
    cfg = driver()
    assert cfg == DriverConfig(containerd_runtime="io.containerd.runc.v2")
    assert cfg.enabled and cfg.allow_privileged and cfg.auth is None
    assert cfg.address == "/run/containerd/containerd.sock"
    assert cfg.namespace == "nomad"
    assert cfg.bridge_subnet == ipaddress.IPv4Network("172.26.80.0/20")
    assert cfg.stats_interval is None


def test_driver_full() -> None:
    cfg = driver(
        enabled=False,
        stats_interval="5s",
        allow_privileged=False,
        auth={"username": "u", "password": "sekret"},
        address="unix:///run/other/containerd.sock",
        namespace="jobs",
        insecure_registries=["127.0.0.1:5000", "registry.local"],
        cni_bin_dir="/opt/cni/bin",
        cni_conf_dir="/etc/cni/net.d",
        bridge_subnet="10.99.0.0/24",
    )
    assert cfg.stats_interval == 5.0 and not cfg.enabled and not cfg.allow_privileged
    assert cfg.auth is not None and cfg.auth.password == "sekret"
    assert "sekret" not in repr(cfg)
    assert cfg.address == "/run/other/containerd.sock"
    assert cfg.insecure_registries == ("127.0.0.1:5000", "registry.local")


def test_empty_driver_config_lacks_runtime() -> None:
    with pytest.raises(ConfigError) as err:
        parse_driver_config(b"")
    assert str(err.value) == "invalid driver config: containerd_runtime: is required"


@pytest.mark.parametrize("runtime", ["runc", "/tmp/evil", "../x", "io.containerd.runc", "IO.containerd.runc.v2"])
def test_bad_runtimes(runtime: str) -> None:
    assert driver_error(containerd_runtime=runtime) == (
        f'invalid driver config: containerd_runtime: "{runtime}" is not a containerd runtime '
        "name like io.containerd.runc.v2 (no paths)"
    )


def test_good_runtimes() -> None:
    for name in ("io.containerd.kata-qemu.v2", "io.containerd.runsc.v1"):
        assert driver(containerd_runtime=name).containerd_runtime == name


def test_driver_value_errors() -> None:
    assert driver_error(stats_interval="0s") == 'invalid driver config: stats_interval: "0s" must be positive'
    assert driver_error(namespace="a b") == (
        'invalid driver config: namespace: "a b" is not a containerd namespace name (letters, digits, . _ -)'
    )
    assert driver_error(address="run/c.sock") == 'invalid driver config: address: "run/c.sock" must be an absolute path'
    assert "host bits zero" in driver_error(bridge_subnet="10.0.0.1/24")
    assert driver_error(insecure_registries=["http://x"]) == (
        'invalid driver config: insecure_registries[0]: "http://x" is not a registry host[:port]'
    )


def test_driver_auth_registry_pins_the_credentials() -> None:
    cfg = driver(auth={"username": "u", "password": "p", "registry": "Registry.Example.com:5000"})
    assert cfg.auth is not None and cfg.auth.registry == "registry.example.com:5000"
    assert driver(auth={"username": "u", "password": "p"}).auth.registry is None  # type: ignore[union-attr]
    for bad in ("https://registry.example.com", "registry.example.com/v2", "", "a b"):
        assert driver_error(auth={"username": "u", "password": "p", "registry": bad}) == (
            f'invalid driver config: auth.registry: "{bad}" is not a registry host[:port] like registry.example.com:5000'
        )


def test_task_auth_has_no_registry_field() -> None:
    # a task's credentials belong to its own image's registry: nothing to pin
    assert "registry" not in dict(implied_type(task_config_spec()).attrs)["auth"].attrs  # type: ignore[attr-defined]


def test_driver_auth_values_never_echoed() -> None:
    message = driver_error(auth={"username": "admin", "password": "hunter2\x00"})
    assert message == "invalid driver config: auth.password: must not contain a NUL character"
    assert "hunter2" not in message


# ---- task config -----------------------------------------------------------------------------


def test_task_defaults() -> None:
    cfg = task()
    assert cfg == TaskConfig(image="busybox:1.36")
    assert cfg.image_pull_timeout == 300.0 and cfg.host_dns and cfg.seccomp
    assert not cfg.privileged and cfg.entrypoint is None and cfg.args == ()
    assert dict(cfg.sysctl) == {}


def test_task_full() -> None:
    cfg = task(
        image="127.0.0.1:5000/nomad-ctr/plain:latest",
        image_pull_timeout="1h30m",
        command="sh",
        args=["-c", "echo hi"],
        entrypoint=["/bin/tini", "--"],
        cwd="/srv",
        privileged=True,
        pids_limit=100,
        pid_mode="host",
        hostname="web-1.example",
        host_dns=False,
        seccomp=True,
        seccomp_profile="/etc/seccomp/profile.json",
        shm_size="128m",
        sysctl=[{"net.core.somaxconn": "16384"}, {"kernel.shmmax": "1024"}],
        readonly_rootfs=True,
        extra_hosts=["db:10.0.0.5", "v6:::1"],
        cap_add=["net_admin", "CAP_SYS_TIME", "NET_ADMIN"],
        cap_drop=["all"],
        devices=["/dev/fuse"],
        auth={"username": "u", "password": "p4ss"},
        mounts=[
            {"target": "/data", "source": "local/data", "options": ["rbind", "ro"]},
            {"type": "tmpfs", "target": "/scratch", "options": ["size=64m", "noexec"]},
        ],
    )
    assert cfg.image_pull_timeout == 5400.0
    assert cfg.entrypoint == ("/bin/tini", "--") and cfg.command == "sh"
    assert cfg.shm_size == 128 * 1024 * 1024
    assert dict(cfg.sysctl) == {"net.core.somaxconn": "16384", "kernel.shmmax": "1024"}
    assert cfg.extra_hosts == (ExtraHost("db", "10.0.0.5"), ExtraHost("v6", "::1"))
    assert cfg.cap_add == ("CAP_NET_ADMIN", "CAP_SYS_TIME")
    assert cfg.cap_drop == ("ALL",)
    assert cfg.mounts == (
        MountConfig(type="volume", target="/data", source="local/data", options=("rbind", "ro")),
        MountConfig(type="tmpfs", target="/scratch", source=None, options=("size=64m", "noexec")),
    )
    assert "p4ss" not in repr(cfg)


def test_numbers_from_other_forms() -> None:
    assert task(pids_limit=Decimal(100)).pids_limit == 100
    assert task(pids_limit=64.0).pids_limit == 64


@pytest.mark.parametrize(
    "values, message",
    [
        ({"image": ""}, "image: is required"),
        ({"image": "Busybox"}, 'image: "Busybox" is not an image reference (lower-case name[:tag][@digest])'),
        ({"image": "busybox:"}, 'image: "busybox:" has a malformed tag (letters, digits, _ . -; at most 128)'),
        ({"image": ":tag"}, 'image: ":tag" is not an image reference (lower-case name[:tag][@digest])'),
        ({"image": "x@sha256:abc"}, 'image: "x@sha256:abc" has a malformed digest (want algorithm:hex, e.g. sha256:<64 hex>)'),
        ({"image": "http://h/x"}, 'image: "http://h/x" has a malformed registry host'),
        ({"image": "x/../y"}, 'image: "x/../y" is not an image reference (lower-case name[:tag][@digest])'),
        ({"image": "-x"}, 'image: "-x" is not an image reference (lower-case name[:tag][@digest])'),
        ({"image": "a b"}, 'image: "a b" must not contain whitespace or control characters'),
        ({"image": "a\nb"}, 'image: "a\\nb" must not contain whitespace or control characters'),
        ({"image": "busybox:" + "t" * 129}, "has a malformed tag"),
        ({"image": "a/" * 150 + "b"}, "repository name is longer than 255 characters"),
        ({"pids_limit": -1}, "pids_limit: -1 must be between 1 and 4194304"),
        ({"pids_limit": 0}, "pids_limit: 0 must be between 1 and 4194304"),
        ({"pids_limit": 1.5}, "pids_limit: 1.5 must be a whole number"),
        ({"pids_limit": 2**63}, "pids_limit: 9223372036854775808 must be between 1 and 4194304"),
        ({"pids_limit": Decimal("1e400")}, "pids_limit: 1E+400 must be between 1 and 4194304"),
        ({"pids_limit": float("inf")}, "pids_limit: Infinity must be a whole number"),
        ({"shm_size": "-1g"}, 'shm_size: "-1g" is not a size (e.g. "64k", "128m", "1g" or a number of bytes)'),
        ({"shm_size": "1e20"}, 'shm_size: "1e20" is not a size'),
        ({"shm_size": "99999T"}, 'shm_size: "99999T" must be at least 1k (1024 bytes) and at most 1T'),
        ({"shm_size": "0"}, 'shm_size: "0" must be at least 1k (1024 bytes) and at most 1T'),
        ({"shm_size": "512"}, 'shm_size: "512" must be at least 1k (1024 bytes) and at most 1T'),
        ({"shm_size": "1023b"}, 'shm_size: "1023b" must be at least 1k'),
        ({"shm_size": "0.5k"}, 'shm_size: "0.5k" must be at least 1k'),
        ({"image_pull_timeout": "-5m"}, 'image_pull_timeout: "-5m" must not be signed (use e.g. "5m")'),
        ({"image_pull_timeout": "0s"}, 'image_pull_timeout: "0s" must be positive'),
        ({"image_pull_timeout": "5"}, 'image_pull_timeout: "5" is not a duration (e.g. "30s", "5m", "1h30m")'),
        ({"image_pull_timeout": "5 m"}, "is not a duration"),
        ({"image_pull_timeout": "abc"}, "is not a duration"),
        ({"image_pull_timeout": "1e3s"}, "is not a duration"),
        ({"image_pull_timeout": "100000h"}, 'image_pull_timeout: "100000h" must be at most 24h'),
        ({"entrypoint": []}, "entrypoint: [] must not be an empty list"),
        ({"args": ["a\x00b"]}, 'args[0]: "a\\x00b" must not contain a NUL character'),
        ({"args": ["x" * (200 * 1024)]}, "element 0 is 204800 bytes in UTF-8, more than 131071"),
        ({"args": ["x" * 131072]}, "element 0 is 131072 bytes in UTF-8, more than 131071"),
        # characters are not bytes: 70000 two-byte characters are over the limit
        ({"args": ["ok", "\u00e9" * 70000]}, "args: \"" + "\u00e9" * 80 + "\"... element 1 is 140000 bytes in UTF-8"),
        ({"args": ["\u00e9" * 60000] * 10}, "args: command line is longer than 1 MiB (UTF-8 bytes, one NUL per element)"),
        ({"cwd": "srv"}, 'cwd: "srv" must be an absolute path'),
        ({"pid_mode": "container:x"}, 'pid_mode: "container:x" must be "host" or unset'),
        ({"hostname": "h" * 64}, "must be a host name of at most 63 characters"),
        ({"hostname": "a_b"}, 'hostname: "a_b" must be a host name'),
        ({"seccomp": False, "seccomp_profile": "/p.json"}, 'seccomp_profile: "/p.json" is set but seccomp = false'),
        ({"seccomp_profile": "../x"}, 'seccomp_profile: "../x" must be an absolute path'),
        ({"cap_add": ["CAP_FOO"]}, 'cap_add[0]: "CAP_FOO" is not a Linux capability (e.g. "NET_ADMIN")'),
        ({"cap_add": [""]}, 'cap_add[0]: "" is not a Linux capability'),
        ({"cap_add": ["sys_admin "]}, 'cap_add[0]: "sys_admin " is not a Linux capability'),
        ({"cap_add": ["ALL"]}, 'cap_add[0]: "ALL" is not allowed here (use privileged = true)'),
        ({"devices": ["/etc/passwd"]}, 'devices[0]: "/etc/passwd" must be a device path under /dev/'),
        ({"devices": ["/dev/../etc/shadow"]}, "must be a device path under /dev/"),
        ({"extra_hosts": ["a\nb:1.2.3.4"]}, 'extra_hosts[0]: "a\\nb:1.2.3.4" is not "host:IP"'),
        ({"extra_hosts": ["db:300.1.1.1"]}, 'extra_hosts[0]: "db:300.1.1.1" is not "host:IP" (bad IP address)'),
        ({"sysctl": [{"kernel.randomize_va_space": "0"}]}, 'sysctl: "kernel.randomize_va_space" is not namespaced'),
        ({"sysctl": [{"vm.overcommit_memory": "1"}]}, "is not namespaced"),
        ({"sysctl": [{"kernel/shmmax": "1"}]}, 'sysctl: "kernel/shmmax" is not a sysctl name like net.core.somaxconn'),
        ({"sysctl": [{"../x": "1"}]}, "is not a sysctl name"),
        ({"sysctl": [{"": "1"}]}, "is not a sysctl name"),
        ({"sysctl": [{"net.a=b": "1"}]}, "is not a sysctl name"),
        ({"sysctl": [{"net.core.somaxconn": "1\n2"}]}, 'sysctl.net.core.somaxconn: "1\\n2" must be one line'),
        ({"sysctl": [{"net.ipv4.ip_forward": "1"}], "host_network": True}, "cannot be set with host_network = true"),
        ({"mounts": [{"target": "data", "source": "/x"}]}, 'mounts[0].target: "data" must be an absolute path inside the container'),
        ({"mounts": [{"target": "/", "source": "/x"}]}, 'mounts[0].target: "/" must not be / or contain'),
        ({"mounts": [{"target": "/proc/x", "source": "/x"}]}, "must not be /dev or under /proc or /sys"),
        ({"mounts": [{"target": "/sys", "source": "/x"}]}, "must not be /dev or under /proc or /sys"),
        ({"mounts": [{"target": "/a/../b", "source": "/x"}]}, "must not be / or contain '..'"),
        ({"mounts": [{"target": "/a", "source": "local/../../.."}]}, 'mounts[0].source: "local/../../.." must not contain'),
        ({"mounts": [{"target": "/a"}]}, "mounts[0].source: is required for type volume"),
        ({"mounts": [{"type": "nfs", "target": "/a", "source": "x"}]}, 'mounts[0].type: "nfs" must be one of volume, bind, tmpfs'),
        ({"mounts": [{"target": "/a", "source": "/x", "options": ["rshared"]}]}, 'mounts[0].options[0]: "rshared" is not an allowed volume mount option'),
        ({"mounts": [{"type": "bind", "target": "/a", "source": "/x", "options": ["suid"]}]}, "is not an allowed bind mount option"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["dev"]}]}, "is not an allowed tmpfs mount option"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=0"]}]},
         'mounts[0].options[0]: "size=0" size=0 would make the tmpfs unlimited'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=99999g"]}]}, "size must be at most 1T"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=2T"]}]},
         'mounts[0].options[0]: "size=2T" size must be at most 1T'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=2t"]}]}, '"size=2t" size must be at most 1T'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=1p"]}]}, '"size=1p" size must be at most 1T'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=" + "9" * 5000]}]}, "size must be at most 1T"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["nr_inodes=2t"]}]}, "nr_inodes must be at most 1T"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=0%"]}]},
         '"size=0%" size in % of the host\'s memory must be from 1% to 100%'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=101%"]}]}, "must be from 1% to 100%"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["nr_inodes=5%"]}]},
         '"nr_inodes=5%" nr_inodes takes a number with an optional k, m, g or t, not %'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=1.5g"]}]},
         '"size=1.5g" size must be a whole number with an optional k, m, g or t, or N% of the host\'s memory'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size=12x"]}]}, "size must be a whole number"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["size="]}]}, "size must be a whole number"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["nr_inodes=1kb"]}]},
         '"nr_inodes=1kb" nr_inodes must be a whole number with an optional k, m, g or t'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["mode=" + "7" * 5000]}]}, "mode must be octal"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["uid=" + "1" * 5000]}]}, "uid must be a number"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["nr_inodes=0"]}]}, "nr_inodes=0 would make"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["mode=999"]}]}, '"mode=999" mode must be octal'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["mode=17777"]}]}, "mode must be octal, at most 7777"),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["uid=4294967295"]}]},
         '"uid=4294967295" uid must be a number from 0 to 4294967294'),
        ({"mounts": [{"type": "tmpfs", "target": "/a", "options": ["gid=1k"]}]}, "gid must be a number"),
        ({"mounts": [{"target": "/a", "source": "/dev/fd/0"}]}, "names the driver's own process"),
        ({"mounts": [{"target": "/a", "source": "/proc/thread-self/root"}]}, "names the driver's own process"),
        ({"auth": {"username": "u", "password": ""}}, "auth.password: is required"),
    ],
)
def test_bad_task_values(values: dict[str, Any], message: str) -> None:
    text = task_error(**values)
    assert text.startswith("invalid task config: ")
    assert message in text
    assert "\n" not in text and len(text) < 512


def test_type_errors_from_decoder() -> None:
    data = msgpack.packb({"image": "x", "args": "echo hi"})
    with pytest.raises(ConfigError) as err:
        parse_task_config(data)
    assert str(err.value) == "invalid task config: args: expected list, got string"
    with pytest.raises(ConfigError) as err:
        parse_task_config(msgpack.packb({"image": "x", "privileged": "yes"}))
    assert str(err.value) == "invalid task config: privileged: expected bool, got string"
    with pytest.raises(ConfigError) as err:
        parse_task_config(msgpack.packb({"image": None}))
    assert str(err.value) == "invalid task config: image: is required"
    with pytest.raises(ConfigError) as err:
        parse_task_config(msgpack.packb({"image": "x", "bogus": 1}))
    assert str(err.value) == "invalid task config: bogus: unsupported attribute"
    with pytest.raises(ConfigError) as err:
        parse_task_config(b"\xc1")
    assert str(err.value).startswith("invalid task config: (config): not valid msgpack")


def test_unknown_value_rejected() -> None:
    data = msgpack.packb({"image": msgpack.ExtType(0, b"\x00")})
    with pytest.raises(ConfigError) as err:
        parse_task_config(data)
    assert str(err.value) == "invalid task config: image: value is not known"


def test_task_auth_never_echoed() -> None:
    text = task_error(auth={"username": "bob\x00", "password": "topsecret"})
    assert text == "invalid task config: auth.username: must not contain a NUL character"
    assert "topsecret" not in text and "bob" not in text


def test_same_input_same_error() -> None:
    assert task_error(pids_limit=-1) == task_error(pids_limit=-1)


def test_privileged_gate() -> None:
    check_task_allowed(task(privileged=True), driver())
    with pytest.raises(ConfigError) as err:
        check_task_allowed(task(privileged=True), driver(allow_privileged=False))
    assert str(err.value) == "Running privileged jobs are not allowed"  # the reference driver's text
    assert err.value.field == "privileged"


# ---- value syntaxes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [("300ms", 0.3), ("5m", 300.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("10s", 10.0), ("0", 0.0), ("2us", 2e-6)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-5m", "+5m", "5", "abc", "5 m", "1e3s", "5mm", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    "text, size",
    [("64k", 65536), ("128m", 128 << 20), ("128M", 128 << 20), ("1g", 1 << 30), ("1.5GiB", 3 << 29), ("1048576", 1048576), ("2mb", 2 << 20)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1g", "1e20", "g", "12x", "1 0"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize("name", ["net_admin", "NET_ADMIN", "cap_net_admin", "CAP_NET_ADMIN"])
def test_capability_spellings(name: str) -> None:
    assert normalize_capability(name) == "CAP_NET_ADMIN"


def test_show_escapes_and_cuts() -> None:
    assert show("a\"b\\c\x01\u00a0") == '"a\\"b\\\\c\\x01\\xa0"'
    assert show("x" * 100) == '"' + "x" * 80 + '"...'
    assert show(["a", 1]) == '["a",1]'
    assert show(None) == "null"


# ---- arbitrary input never escapes as anything but ConfigError ------------------------------

from hypothesis import given, settings
from hypothesis import strategies as st

_msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
_task_keys = sorted(task_config_spec().object.attributes)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_task_keys), _msgpack_values, max_size=8))
def test_arbitrary_task_configs_fail_cleanly(values: dict[str, Any]) -> None:
    data = msgpack.packb(values, use_bin_type=True)
    try:
        parse_task_config(data)
    except ConfigError as exc:
        text = str(exc)
        assert text.startswith("invalid task config: ") and "\n" not in text and len(text) < 512


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_fail_cleanly(data: bytes) -> None:
    for parse in (parse_task_config, parse_driver_config):
        try:
            parse(data)
        except ConfigError:
            pass


def test_sysctl_is_published_as_any() -> None:
    # `any` so plain hcldec accepts both `sysctl = { ... }` and a list of maps
    assert task_config_spec().object.attributes["sysctl"].Attr.type == "any"


# cty msgpack produced by go-cty (tests/harness `nomad-harness schema-decode` on
# `image = "busybox"` plus the sysctl line), i.e. what Nomad hands the plugin for `any`:
# the value's own type, no dynamic wrapper
_GO_CTY_SYSCTL_OBJECT = (
    "3gAXpGFyZ3PApGF1dGjAp2NhcF9hZGTAqGNhcF9kcm9wwKdjb21tYW5kwKNjd2TAp2RldmljZXPAqmVudHJ5cG9p"
    "bnTAq2V4dHJhX2hvc3RzwKhob3N0X2Ruc8OsaG9zdF9uZXR3b3Jrwqhob3N0bmFtZcClaW1hZ2WnYnVzeWJveLJp"
    "bWFnZV9wdWxsX3RpbWVvdXSiNW2mbW91bnRzkKhwaWRfbW9kZcCqcGlkc19saW1pdMCqcHJpdmlsZWdlZMKvcmVh"
    "ZG9ubHlfcm9vdGZzwqdzZWNjb21ww69zZWNjb21wX3Byb2ZpbGXAqHNobV9zaXplwKZzeXNjdGyCsm5ldC5jb3Jl"
    "LnNvbWF4Y29ubqUxNjM4NNkjbmV0LmlwdjQuaXBfdW5wcml2aWxlZ2VkX3BvcnRfc3RhcnRQ"
)
_GO_CTY_SYSCTL_TUPLE = (
    "3gAXpGFyZ3PApGF1dGjAp2NhcF9hZGTAqGNhcF9kcm9wwKdjb21tYW5kwKNjd2TAp2RldmljZXPAqmVudHJ5cG9p"
    "bnTAq2V4dHJhX2hvc3RzwKhob3N0X2Ruc8OsaG9zdF9uZXR3b3Jrwqhob3N0bmFtZcClaW1hZ2WnYnVzeWJveLJp"
    "bWFnZV9wdWxsX3RpbWVvdXSiNW2mbW91bnRzkKhwaWRfbW9kZcCqcGlkc19saW1pdMCqcHJpdmlsZWdlZMKvcmVh"
    "ZG9ubHlfcm9vdGZzwqdzZWNjb21ww69zZWNjb21wX3Byb2ZpbGXAqHNobV9zaXplwKZzeXNjdGySgbJuZXQuY29y"
    "ZS5zb21heGNvbm7NQACBrWtlcm5lbC5zaG1tYXikMTAyNA=="
)


@pytest.mark.parametrize(
    ("b64", "expected"),
    [
        # sysctl = { "net.core.somaxconn" = "16384", "net.ipv4.ip_unprivileged_port_start" = 80 }
        (
            _GO_CTY_SYSCTL_OBJECT,
            {"net.core.somaxconn": "16384", "net.ipv4.ip_unprivileged_port_start": "80"},
        ),
        # sysctl = [{ "net.core.somaxconn" = 16384 }, { "kernel.shmmax" = "1024" }]
        (_GO_CTY_SYSCTL_TUPLE, {"net.core.somaxconn": "16384", "kernel.shmmax": "1024"}),
    ],
)
def test_sysctl_from_go_cty_bytes(b64: str, expected: dict[str, str]) -> None:
    cfg = parse_task_config(base64.b64decode(b64))
    assert cfg.image == "busybox" and dict(cfg.sysctl) == expected


def test_sysctl_shapes() -> None:
    # an object (`sysctl = {...}`), a tuple of objects (a list of maps, block syntax),
    # numbers as values
    for raw in ([{"net.core.somaxconn": "16384"}], {"net.core.somaxconn": 16384}, [{"net.core.somaxconn": 16384}]):
        data = msgpack.packb({"image": "x", "sysctl": raw})
        assert dict(parse_task_config(data).sysctl) == {"net.core.somaxconn": "16384"}
    with pytest.raises(ConfigError) as err:
        parse_task_config(msgpack.packb({"image": "x", "sysctl": "net.core.somaxconn=1"}))
    assert str(err.value) == (
        'invalid task config: sysctl: "net.core.somaxconn=1" must be a map like { "net.core.somaxconn" = "16384" }'
    )
    with pytest.raises(ConfigError) as err:
        parse_task_config(msgpack.packb({"image": "x", "sysctl": {"net.core.somaxconn": True}}))
    assert str(err.value) == "invalid task config: sysctl.net.core.somaxconn: true must be a string"


@pytest.mark.parametrize(
    "option",
    ["size=1t", "size=1T", "size=1024g", "size=64M", "size=50%", "size=100%", "size=1%", "nr_inodes=10k",
     "nr_inodes=1t", "mode=1777", "uid=1000"],
)
def test_tmpfs_amounts_the_kernel_takes(option: str) -> None:
    """tmpfs' own syntax (the kernel's memparse suffixes, and % of RAM for size)."""
    cfg = task(mounts=[{"type": "tmpfs", "target": "/a", "options": [option]}])
    assert cfg.mounts[0].options == (option,)


@pytest.mark.parametrize("text, size", [("1024", 1024), ("1k", 1024), ("1536", 1536), ("1T", 1 << 40)])
def test_shm_size_bounds_accepted(text: str, size: int) -> None:
    assert task(shm_size=text).shm_size == size


def test_args_limits_count_utf8_bytes() -> None:
    assert task(args=["x" * 131071]).args == ("x" * 131071,)  # + NUL = execve's 128 KiB
    assert task(args=["\u00e9" * 65535]).args[0] == "\u00e9" * 65535  # 131070 bytes
    full = ["x" * 100_000] * 10 + ["y" * (1024 * 1024 - 10 * 100_001 - 1)]  # 1 MiB with the NULs
    assert len(task(args=full).args) == 11
    assert "longer than 1 MiB" in task_error(args=[*full[:-1], full[-1] + "z"])
