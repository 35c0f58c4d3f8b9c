"""CNI runner: conflist chaining, env, runtimeConfig, errors, result parsing.

Protocol mechanics use a small recording plugin (a real executable run through
the real subprocess path); the real containernetworking plugins are exercised
here where they need no root (VERSION, config errors) and in tests/net.
"""

from __future__ import annotations

import ipaddress
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from nomad_ctr.net.cni import (
    CNIRuntime,
    parse_result,
    validate_conflist,
    validate_container_id,
    validate_ifname,
)
from nomad_ctr.net.errors import CNIError

pytestmark = pytest.mark.unit

REAL_PLUGIN_DIR = Path("/usr/lib/cni")

RECORDER = """#!{python}
import json, os, sys
conf = json.load(sys.stdin)
with open(conf["log"], "a") as f:
    f.write(json.dumps({{"type": conf["type"],
        "env": {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}},
        "conf": conf}}) + "\\n")
if conf.get("fail"):
    print(json.dumps({{"cniVersion": "1.0.0", "code": 11, "msg": conf["fail"], "details": "d"}}))
    sys.exit(1)
if conf.get("garbage"):
    print("not json"); sys.exit(0)
if os.environ["CNI_COMMAND"] == "ADD":
    prev = conf.get("prevResult") or {{"cniVersion": conf["cniVersion"], "interfaces": [], "ips": []}}
    prev["interfaces"].append({{"name": conf["type"] + "-if", "sandbox": os.environ["CNI_NETNS"]}})
    print(json.dumps(prev))
"""


@pytest.fixture()
def plugins(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("first", "second", "third"):
        p = bindir / name
        p.write_text(RECORDER.format(python=sys.executable))
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return bindir


def _conflist(log: Path, **extra: dict[str, Any]) -> dict[str, Any]:
    plugins = []
    for name in ("first", "second", "third"):
        conf: dict[str, Any] = {"type": name, "log": str(log)}
        conf.update(extra.get(name, {}))
        plugins.append(conf)
    plugins[2]["capabilities"] = {"portMappings": True}
    return {"cniVersion": "1.0.0", "name": "testnet", "plugins": plugins}


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_add_chains_prev_result_and_sets_env(plugins: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    rt = CNIRuntime(plugin_dirs=(plugins,))
    result = rt.add(
        _conflist(log),
        container_id="abc-1",
        netns="/var/run/netns/x",
        ifname="eth1",
        args="IgnoreUnknown=1",
        runtime_config={"portMappings": [{"hostPort": 1, "containerPort": 2}], "other": 1},
    )
    calls = _calls(log)
    assert [c["type"] for c in calls] == ["first", "second", "third"]
    env = calls[0]["env"]
    assert env["CNI_COMMAND"] == "ADD"
    assert env["CNI_CONTAINERID"] == "abc-1"
    assert env["CNI_NETNS"] == "/var/run/netns/x"
    assert env["CNI_IFNAME"] == "eth1"
    assert env["CNI_ARGS"] == "IgnoreUnknown=1"
    assert env["CNI_PATH"] == str(plugins)
    # name and cniVersion come from the list; prevResult only after the first
    assert calls[0]["conf"]["name"] == "testnet"
    assert calls[0]["conf"]["cniVersion"] == "1.0.0"
    assert "prevResult" not in calls[0]["conf"]
    assert [i["name"] for i in calls[2]["conf"]["prevResult"]["interfaces"]] == [
        "first-if",
        "second-if",
    ]
    # runtimeConfig only for the plugin that declares the capability, filtered
    assert "runtimeConfig" not in calls[0]["conf"]
    assert calls[2]["conf"]["runtimeConfig"] == {
        "portMappings": [{"hostPort": 1, "containerPort": 2}]
    }
    assert [i.name for i in result.interfaces] == ["first-if", "second-if", "third-if"]


def test_del_runs_in_reverse_with_prev_result_and_continues_after_error(
    plugins: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    rt = CNIRuntime(plugin_dirs=(plugins,))
    prev = {"cniVersion": "1.0.0", "interfaces": [], "ips": []}
    conflist = _conflist(log, second={"fail": "boom"})
    with pytest.raises(CNIError) as exc:
        rt.delete(conflist, container_id="abc", netns="", prev_result=prev)
    calls = _calls(log)
    assert [c["type"] for c in calls] == ["third", "second", "first"]
    assert all(c["env"]["CNI_COMMAND"] == "DEL" for c in calls)
    assert all(c["conf"]["prevResult"] == prev for c in calls)
    assert calls[0]["env"]["CNI_NETNS"] == ""
    assert exc.value.plugin == "second"
    assert exc.value.command == "DEL"
    assert exc.value.code == 11
    assert "boom" in str(exc.value) and "second" in str(exc.value)


def test_add_stops_at_first_error_naming_the_plugin(plugins: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    rt = CNIRuntime(plugin_dirs=(plugins,))
    with pytest.raises(CNIError, match=r"'second' ADD failed \(code 11\): no subnet \(d\)"):
        rt.add(_conflist(log, second={"fail": "no subnet"}), container_id="c", netns="/x")
    assert [c["type"] for c in _calls(log)] == ["first", "second"]


def test_check_passes_cached_result(plugins: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    rt = CNIRuntime(plugin_dirs=(plugins,))
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}]}
    rt.check(_conflist(log), prev, container_id="c", netns="/x")
    calls = _calls(log)
    assert [c["env"]["CNI_COMMAND"] for c in calls] == ["CHECK"] * 3
    assert calls[0]["conf"]["prevResult"] == prev


def test_check_refuses_old_cni_version(plugins: Path, tmp_path: Path) -> None:
    conflist = _conflist(tmp_path / "log")
    conflist["cniVersion"] = "0.3.1"
    with pytest.raises(ValueError, match="cniVersion"):
        CNIRuntime(plugin_dirs=(plugins,)).check(conflist, {}, container_id="c", netns="/x")


def test_invalid_json_output_is_an_error(plugins: Path, tmp_path: Path) -> None:
    rt = CNIRuntime(plugin_dirs=(plugins,))
    with pytest.raises(CNIError, match="'first' ADD failed: invalid JSON"):
        rt.add(_conflist(tmp_path / "log", first={"garbage": True}), container_id="c", netns="/x")


def test_missing_plugin_is_named(tmp_path: Path) -> None:
    rt = CNIRuntime(plugin_dirs=(tmp_path,))
    conflist = {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "nosuch"}]}
    with pytest.raises(CNIError, match="'nosuch'.*not found"):
        rt.add(conflist, container_id="c", netns="/x")


def test_cni_env_of_caller_does_not_leak(
    plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNI_ARGS", "LEAK=1")
    log = tmp_path / "log"
    CNIRuntime(plugin_dirs=(plugins,)).add(_conflist(log), container_id="c", netns="/x")
    assert _calls(log)[0]["env"]["CNI_ARGS"] == ""


@pytest.mark.parametrize(
    "conflist, field",
    [
        ([], "conflist"),
        ({"name": "n", "plugins": [{"type": "a"}]}, "conflist.cniVersion"),
        ({"cniVersion": "1.0.0", "plugins": [{"type": "a"}]}, "conflist.name"),
        ({"cniVersion": "1.0.0", "name": "n", "plugins": []}, "conflist.plugins"),
        (
            {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../x"}]},
            r"conflist.plugins\[0\].type",
        ),
    ],
)
def test_validate_conflist_names_the_field(conflist: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        validate_conflist(conflist)


@pytest.mark.parametrize("cid", ["", "-abc", "a b", "a/b", "ä"])
def test_bad_container_id(cid: str) -> None:
    with pytest.raises(ValueError, match="container_id"):
        validate_container_id(cid)


@pytest.mark.parametrize("ifname", ["", "a" * 16, "a/b", "a b", ".", "..", "a:b"])
def test_bad_ifname(ifname: str) -> None:
    with pytest.raises(ValueError, match="ifname"):
        validate_ifname(ifname)


def test_parse_result_1_0_0() -> None:
    raw = {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "br0", "mac": "aa:bb:cc:dd:ee:01"},
            {"name": "veth1", "mac": "aa:bb:cc:dd:ee:02"},
            {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/var/run/netns/x"},
        ],
        "ips": [
            {"interface": 2, "address": "10.89.0.2/24", "gateway": "10.89.0.1"},
            {"interface": 2, "address": "fd00::2/64"},
        ],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.89.0.254"}],
        "dns": {"nameservers": ["10.89.0.1"], "search": ["svc"], "options": ["ndots:2"]},
    }
    r = parse_result(raw)
    assert r.cni_version == "1.0.0"
    assert [i.name for i in r.sandbox_interfaces()] == ["eth0"]
    eth0 = r.ips_for("eth0")
    assert eth0[0].address == ipaddress.ip_interface("10.89.0.2/24")
    assert eth0[0].gateway == ipaddress.ip_address("10.89.0.1")
    assert eth0[1].address.version == 6 and eth0[1].gateway is None
    assert r.ips_for("veth1") == []
    assert r.routes[1].gw == ipaddress.ip_address("10.89.0.254")
    assert r.dns.nameservers == ("10.89.0.1",) and r.dns.search == ("svc",)
    assert r.raw == raw


def test_parse_result_0_4_0_with_version_field() -> None:
    r = parse_result(
        {
            "cniVersion": "0.4.0",
            "ips": [{"version": "4", "address": "10.0.0.5/16", "interface": 0}],
            "interfaces": [{"name": "eth0", "sandbox": "/n"}],
        }
    )
    assert str(r.ips_for("eth0")[0].address.ip) == "10.0.0.5"


@pytest.mark.parametrize(
    "raw",
    [
        {"ips": [{"address": "nonsense"}]},
        {"ips": [{"address": "10.0.0.1/24", "gateway": "x"}]},
        {"ips": [{"address": "10.0.0.1/24", "interface": "0"}]},
        {"interfaces": [{"mac": "aa"}]},
        {"routes": [{"gw": "10.0.0.1"}]},
        {"dns": ["8.8.8.8"]},
    ],
)
def test_parse_result_rejects_malformed(raw: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="CNI result"):
        parse_result(raw)


needs_real_plugins = pytest.mark.skipif(
    not (REAL_PLUGIN_DIR / "bridge").exists(), reason="containernetworking-plugins not installed"
)


@needs_real_plugins
def test_real_plugin_version() -> None:
    data = CNIRuntime().exec_plugin(
        "VERSION", {"cniVersion": "1.0.0", "type": "bridge"}, container_id="", netns="", ifname=""
    )
    assert data is not None and "1.0.0" in data["supportedVersions"]


@needs_real_plugins
def test_real_plugin_config_error_is_surfaced() -> None:
    # host-local rejects a bad subnet before touching any namespace (no root needed)
    ipam = {"type": "host-local", "ranges": [[{"subnet": "not-a-cidr"}]]}
    conflist = {
        "cniVersion": "1.0.0",
        "name": "n",
        "plugins": [{"type": "host-local", "ipam": ipam}],
    }
    with pytest.raises(CNIError) as exc:
        CNIRuntime().add(conflist, container_id="c1", netns="/nonexistent")
    assert exc.value.plugin == "host-local"
    assert exc.value.command == "ADD"
    assert "not-a-cidr" in exc.value.msg
