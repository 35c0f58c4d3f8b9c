"""Bridge conflist building, BridgeConfig and PortMapping validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nomad_ctr.net.bridge import BridgeConfig, build_conflist
from nomad_ctr.net.cni import validate_conflist
from nomad_ctr.net.ports import PortMapping, check_unique, runtime_config

pytestmark = pytest.mark.unit


def _plugin(conflist: dict, ptype: str) -> dict:
    return next(p for p in conflist["plugins"] if p["type"] == ptype)


def test_default_conflist_shape() -> None:
    conf = build_conflist(BridgeConfig())
    validate_conflist(conf)
    assert conf["name"] == "nomad-ctr" and conf["cniVersion"] == "1.0.0"
    assert [p["type"] for p in conf["plugins"]] == ["loopback", "bridge", "firewall", "portmap"]
    bridge = _plugin(conf, "bridge")
    assert bridge["bridge"] == "nomadctr0"
    assert bridge["isGateway"] is True and bridge["ipMasq"] is True
    assert bridge["hairpinMode"] is True
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "172.26.96.0/20"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "/run/nomad-ctr/cni/networks",
    }
    assert "mtu" not in bridge
    portmap = _plugin(conf, "portmap")
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}


def test_conflist_options() -> None:
    cfg = BridgeConfig(
        network_name="t1",
        bridge="tbr0",
        subnet="10.89.5.0/24",
        gateway="10.89.5.254",
        ip_masq=False,
        mtu=1400,
        firewall=False,
        localhost_ports=False,
        ipam_data_dir=Path("/tmp/ipam"),
    )
    conf = build_conflist(cfg)
    assert [p["type"] for p in conf["plugins"]] == ["loopback", "bridge", "portmap"]
    bridge = _plugin(conf, "bridge")
    assert bridge["ipMasq"] is False and bridge["mtu"] == 1400
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.89.5.0/24", "gateway": "10.89.5.254"}]]
    assert bridge["ipam"]["dataDir"] == "/tmp/ipam"
    assert _plugin(conf, "portmap")["snat"] is False


def test_ipv6_subnet_gets_ipv6_default_route() -> None:
    conf = build_conflist(BridgeConfig(subnet="fd00:89::/64"))
    assert _plugin(conf, "bridge")["ipam"]["routes"] == [{"dst": "::/0"}]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"network_name": "bad name"}, "network_name"),
        ({"bridge": "a-very-long-bridge-name"}, "bridge"),
        ({"subnet": "10.89.0.1/24"}, "subnet"),  # host bits set
        ({"subnet": "nonsense"}, "subnet"),
        ({"subnet": "10.0.0.0/31"}, "subnet"),
        ({"gateway": "10.0.0.1"}, "gateway"),  # outside the default subnet
        ({"gateway": "172.26.96.0"}, "gateway"),  # network address
        ({"gateway": "x"}, "gateway"),
        ({"mtu": 100}, "mtu"),
        ({"ipam_data_dir": Path("rel")}, "ipam_data_dir"),
        ({"state_dir": Path("rel")}, "state_dir"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bridge_config_errors_name_field_and_value(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"BridgeConfig.{field}") as exc:
        BridgeConfig(**kwargs)
    value = next(iter(kwargs.values()))
    assert repr(value) in str(exc.value)


def test_port_mapping_to_cni_and_back() -> None:
    p = PortMapping(8080, 80)
    assert p.to_cni() == {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
    q = PortMapping(53, 53, "udp", "127.0.0.1")
    assert q.to_cni()["hostIP"] == "127.0.0.1"
    assert PortMapping.from_cni(q.to_cni()) == q
    assert runtime_config([p, q]) == {"portMappings": [p.to_cni(), q.to_cni()]}
    assert runtime_config([]) == {}


@pytest.mark.parametrize(
    "args, field",
    [
        ((0, 80), "host_port"),
        ((65536, 80), "host_port"),
        ((80, -1), "container_port"),
        (("80", 80), "host_port"),
        ((True, 80), "host_port"),
        ((80, 80, "icmp"), "protocol"),
        ((80, 80, "tcp", "localhost"), "host_ip"),
    ],
)
def test_port_mapping_validation(args: tuple, field: str) -> None:
    with pytest.raises(ValueError, match=f"PortMapping.{field}"):
        PortMapping(*args)


def test_duplicate_host_ports_rejected() -> None:
    ok = check_unique([PortMapping(80, 80), PortMapping(80, 80, "udp"), PortMapping(81, 80)])
    assert len(ok) == 3
    with pytest.raises(ValueError, match="mapped twice"):
        check_unique([PortMapping(80, 80), PortMapping(80, 81)])
