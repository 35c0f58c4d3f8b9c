"""The network step's inputs, checked before anything is created (netplan.check_network):
which /etc files a task gets (and so which mount targets clash with them), Nomad's DNS
values, port mappings, Nomad's hosts config, and the operator's network list in
cni_conf_dir. Pure logic: no containerd, no namespaces."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import msgpack
import pytest

from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import ConfigError, DriverConfig, parse_task_config
from nomad_ctr.driver.netplan import OPERATOR_CONFLIST, check_network, operator_conflist
from nomad_ctr.driver.specbuild import build_spec

pytestmark = pytest.mark.unit

GROUP = driver_pb2.NetworkIsolationSpec.GROUP
NONE = driver_pb2.NetworkIsolationSpec.NONE


def tc(**values: Any):
    return parse_task_config(msgpack.packb({"image": "x", **values}))


def driver(conf_dir: Path) -> DriverConfig:
    return DriverConfig("io.containerd.runc.v2", cni_conf_dir=str(conf_dir),
                        bridge_subnet=ipaddress.IPv4Network("10.9.0.0/24"))


def task(tmp_path: Path, **fields: Any) -> driver_pb2.TaskConfig:
    return driver_pb2.TaskConfig(id="a/web/1", name="web", alloc_id="a" * 36, alloc_dir=str(tmp_path), **fields)


def error(fn, *args: Any) -> str:
    with pytest.raises(ConfigError) as err:
        fn(*args)
    return str(err.value)


# ---- which /etc files, and mount targets that clash with them ----------------------------


@pytest.mark.parametrize(
    "values, fields, targets",
    [
        ({}, {}, ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")),
        ({"host_dns": False}, {}, ("/etc/hosts", "/etc/hostname")),
        ({"host_dns": False}, {"dns": driver_pb2.DNSConfig(servers=["10.0.0.2"])},
         ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")),
        ({"host_dns": False}, {"dns": driver_pb2.DNSConfig()}, ("/etc/hosts", "/etc/hostname")),
        ({"host_network": True}, {}, ("/etc/hosts", "/etc/resolv.conf")),
        ({"host_network": True, "host_dns": False}, {}, ("/etc/hosts", "/etc/resolv.conf")),
        ({}, {"network_isolation_spec": driver_pb2.NetworkIsolationSpec(mode=GROUP, path="/var/run/netns/x")},
         ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")),
        ({"host_dns": False}, {"network_isolation_spec": driver_pb2.NetworkIsolationSpec(mode=NONE)},
         ("/etc/hosts", "/etc/hostname")),
    ],
)
def test_generated_etc_files(tmp_path: Path, values: dict, fields: dict, targets: tuple[str, ...]) -> None:
    assert check_network(task(tmp_path, **fields), tc(**values)).etc_targets == targets


@pytest.mark.parametrize(
    "values, target, clashes",
    [
        ({}, "/etc/hosts", True),
        ({}, "/etc/hostname", True),
        ({}, "/etc/resolv.conf", True),
        ({}, "/etc//hosts", True),
        ({"host_dns": False}, "/etc/resolv.conf", False),  # the image's resolv.conf stays: the job may mount one
        ({"host_network": True}, "/etc/hostname", False),  # the host's name, nothing mounted
        ({"host_network": True}, "/etc/resolv.conf", True),
        ({"host_network": True, "host_dns": False}, "/etc/resolv.conf", True),
        ({}, "/etc", False),  # the files are mounted on top of it
    ],
)
def test_job_mount_on_a_generated_etc_file(tmp_path: Path, values: dict, target: str, clashes: bool) -> None:
    t = task(tmp_path)
    cfg = tc(mounts=[{"type": "tmpfs", "target": "/ok"}, {"type": "tmpfs", "target": target}], **values)
    dry = check_network(t, cfg).dry_plan(cfg.host_network)
    if not clashes:
        build_spec(t, cfg, driver(tmp_path), dry)
        return
    assert error(build_spec, t, cfg, driver(tmp_path), dry) == (
        f'invalid task config: mounts[1].target: "{target}" is already mounted by a path the driver mounts '
        "(alloc, local, secrets, /etc/hosts, /etc/resolv.conf, /etc/hostname)"
    )


def test_nomad_volume_mount_on_a_generated_etc_file(tmp_path: Path) -> None:
    t = task(tmp_path, mounts=[driver_pb2.Mount(task_path="/etc/resolv.conf", host_path="/tmp")])
    cfg = tc()
    msg = error(build_spec, t, cfg, driver(tmp_path), check_network(t, cfg).dry_plan(False))
    assert msg.startswith('invalid task config: volume_mount[0]: "/etc/resolv.conf" is already mounted by a path')


# ---- values Nomad sends: DNS, ports, hosts config ------------------------------------------


@pytest.mark.parametrize(
    "dns, message",
    [
        (driver_pb2.DNSConfig(servers=["10.0.0.2", "1.2.3"]), 'dns.servers[1]: "1.2.3" is not an IPv4 or IPv6 address'),
        (driver_pb2.DNSConfig(searches=["a b"]), 'dns.searches[0]: "a b" is not a domain name'),
        (driver_pb2.DNSConfig(options=["ndots:2", "x y"]),
         'dns.options[1]: "x y" is not a resolv.conf option ("name" or "name:number")'),
    ],
)
def test_bad_dns_values_are_named(tmp_path: Path, dns: driver_pb2.DNSConfig, message: str) -> None:
    assert error(check_network, task(tmp_path, dns=dns), tc()) == "invalid task config: " + message


def test_dns_values_are_ignored_with_host_network(tmp_path: Path) -> None:
    t = task(tmp_path, dns=driver_pb2.DNSConfig(servers=["1.2.3"]))
    assert check_network(t, tc(host_network=True)).dns is None


def test_good_dns_becomes_the_resolv_conf(tmp_path: Path) -> None:
    t = task(tmp_path, dns=driver_pb2.DNSConfig(servers=["10.0.0.2"], searches=["svc.local"], options=["ndots:2"]))
    dns = check_network(t, tc()).dns
    assert dns is not None and dns.nameservers == ("10.0.0.2",) and dns.options == ("ndots:2",)


def ports_task(tmp_path: Path, *ports: driver_pb2.PortMapping) -> driver_pb2.TaskConfig:
    t = task(tmp_path)
    t.resources.ports.extend(ports)
    return t


def test_port_mappings_checked_and_mapped(tmp_path: Path) -> None:
    t = ports_task(tmp_path, driver_pb2.PortMapping(label="http", value=20080, to=8080),
                   driver_pb2.PortMapping(label="same", value=20081, to=-1))
    checked = check_network(t, tc())
    assert checked.own_network and checked.port_map == {"http": 8080, "same": 20081}
    assert [(p.host_port, p.container_port, p.protocol) for p in checked.ports] == [
        (20080, 8080, "tcp"), (20080, 8080, "udp"), (20081, 20081, "tcp"), (20081, 20081, "udp")]


@pytest.mark.parametrize(
    "ports, message",
    [
        ((driver_pb2.PortMapping(label="http", value=0, to=80),),
         "resources.ports[0] (http): PortMapping.host_port: must be an integer 1-65535: 0"),
        ((driver_pb2.PortMapping(label="a", value=20080), driver_pb2.PortMapping(label="b", value=20080, to=90)),
         "resources.ports[1] (b): ports: host port 20080/tcp mapped twice"),
        ((driver_pb2.PortMapping(label="a", value=20080, host_ip="nope"),),
         "resources.ports[0] (a): PortMapping.host_ip: not an IP address: 'nope'"),
    ],
)
def test_bad_port_mappings_are_named(tmp_path: Path, ports: tuple, message: str) -> None:
    assert error(check_network, ports_task(tmp_path, *ports), tc()).startswith("invalid task config: " + message)


def test_ports_are_not_checked_where_the_driver_maps_none(tmp_path: Path) -> None:
    bad = driver_pb2.PortMapping(label="http", value=0)
    assert not check_network(ports_task(tmp_path, bad), tc(host_network=True)).own_network
    t = ports_task(tmp_path, bad)
    t.network_isolation_spec.CopyFrom(driver_pb2.NetworkIsolationSpec(mode=GROUP, path="/var/run/netns/x"))
    assert not check_network(t, tc()).own_network


@pytest.mark.parametrize(
    "spec, values, message",
    [
        (driver_pb2.NetworkIsolationSpec(mode=GROUP), {}, "network_isolation_spec.path: is empty for a group network"),
        (driver_pb2.NetworkIsolationSpec(mode=GROUP, path="/n", hostsConfig=driver_pb2.HostsConfig(hostname="a_b")),
         {}, 'network_isolation_spec.hostsConfig.hostname: "a_b" is not a host name'),
        (driver_pb2.NetworkIsolationSpec(mode=GROUP, path="/n", hostsConfig=driver_pb2.HostsConfig(address="10.1")),
         {}, 'network_isolation_spec.hostsConfig.address: "10.1" is not an IP address'),
    ],
)
def test_bad_group_network_values(tmp_path: Path, spec, values: dict, message: str) -> None:
    assert error(check_network, task(tmp_path, network_isolation_spec=spec), tc(**values)) == (
        "invalid task config: " + message)


def test_job_hostname_wins_over_a_bad_group_one(tmp_path: Path) -> None:
    spec = driver_pb2.NetworkIsolationSpec(mode=GROUP, path="/n", hostsConfig=driver_pb2.HostsConfig(hostname="a_b"))
    check_network(task(tmp_path, network_isolation_spec=spec), tc(hostname="web"))


# ---- the operator's network list in cni_conf_dir -------------------------------------------

CUSTOM = {
    "cniVersion": "1.0.0",
    "name": "ops-net",
    "plugins": [
        {"type": "bridge", "bridge": "opsbr0", "isGateway": True, "ipMasq": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}


def write(conf_dir: Path, content: str | bytes, mode: int = 0o644) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / OPERATOR_CONFLIST
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    path.chmod(mode)
    return path


def test_no_file_means_the_generated_network(tmp_path: Path) -> None:
    assert operator_conflist(driver(tmp_path / "missing")) is None
    assert operator_conflist(None) is None
    (tmp_path / "other.conflist").write_text(json.dumps(CUSTOM))  # only the driver's own name counts
    assert operator_conflist(driver(tmp_path)) is None
    assert check_network(task(tmp_path), tc(), driver(tmp_path)).conflist is None


def test_operator_file_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(CUSTOM))
    assert operator_conflist(driver(tmp_path)) == (str(path), CUSTOM)
    checked = check_network(ports_task(tmp_path, driver_pb2.PortMapping(label="p", value=20080)), tc(),
                            driver(tmp_path))
    assert checked.own_network and checked.conflist == CUSTOM


def test_operator_file_is_not_read_where_the_driver_makes_no_network(tmp_path: Path) -> None:
    write(tmp_path, "{broken")
    assert check_network(task(tmp_path), tc(host_network=True), driver(tmp_path)).conflist is None
    spec = driver_pb2.NetworkIsolationSpec(mode=GROUP, path="/n")
    check_network(task(tmp_path, network_isolation_spec=spec), tc(), driver(tmp_path))


@pytest.mark.parametrize(
    "content, rule",
    [
        ("{broken", "is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        (b"\xff\xfe", "is not valid JSON"),
        ("[]", "is not a CNI network list (conflist: expected an object, got list)"),
        (json.dumps({**CUSTOM, "plugins": []}), "is not a CNI network list (conflist.plugins: expected a non-empty list"),
        (json.dumps({**CUSTOM, "name": "a/b"}), "is not a CNI network list (conflist.name: letters, digits"),
        (json.dumps({**CUSTOM, "plugins": [{"type": "../../bin/sh"}]}),
         "is not a CNI network list (conflist.plugins[0].type: invalid: '../../bin/sh')"),
        (" " * (1 << 20) + "{}", "is larger than 1 MiB"),
    ],
)
def test_malformed_operator_file_is_named(tmp_path: Path, content: str | bytes, rule: str) -> None:
    path = write(tmp_path, content)
    msg = error(operator_conflist, driver(tmp_path))
    assert msg.startswith(f'invalid driver config: cni_conf_dir: "{path}" {rule}'), msg
    # StartTask's parse step reads it for a task on the driver's network: the same error
    assert error(check_network, task(tmp_path), tc(), driver(tmp_path)) == msg


def test_operator_file_others_may_change_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(CUSTOM), mode=0o666)
    assert error(operator_conflist, driver(tmp_path)) == (
        f'invalid driver config: cni_conf_dir: "{path}" may be changed by other users than root '
        "(want owner root, mode 644)")


def test_operator_path_that_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / OPERATOR_CONFLIST).mkdir()
    assert error(operator_conflist, driver(tmp_path)).endswith("is not a regular file")
    fifo_dir = tmp_path / "fifo"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / OPERATOR_CONFLIST)  # refused, never waited on
    assert error(operator_conflist, driver(fifo_dir)).endswith("is not a regular file")
    not_dir = tmp_path / "file"
    not_dir.write_text("")
    assert error(operator_conflist, driver(not_dir)) == f'invalid driver config: cni_conf_dir: "{not_dir}" is not a directory'


def test_ports_need_a_portmap_plugin_in_the_operator_file(tmp_path: Path) -> None:
    no_portmap = {**CUSTOM, "plugins": CUSTOM["plugins"][:1]}
    path = write(tmp_path, json.dumps(no_portmap))
    check_network(task(tmp_path), tc(), driver(tmp_path))  # no ports: fine
    t = ports_task(tmp_path, driver_pb2.PortMapping(label="http", value=20080))
    assert error(check_network, t, tc(), driver(tmp_path)) == (
        f'invalid driver config: cni_conf_dir: "{path}" has no plugin with the portMappings capability, '
        "so the task's ports (resources.ports) cannot be published")
