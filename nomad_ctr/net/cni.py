"""Run CNI plugins (the containernetworking spec, 0.3.0 to 1.0.0) via subprocess.

Each plugin is a binary run with CNI_* variables in its environment and its
network config on stdin (fork+exec through subprocess: safe in a process that
holds the Go runtime). A conflist is chained: ADD passes each plugin's result
as the next one's ``prevResult``; DEL runs the list in reverse; CHECK passes
the cached ADD result. ``runtimeConfig`` is given only to plugins that declare
the matching capability, as libcni does.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CNIError, CNIPluginNotFound

DEFAULT_PLUGIN_DIRS: tuple[Path, ...] = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
DEFAULT_TIMEOUT = 60.0

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The CNI spec's rules for container IDs and interface names.
_CONTAINER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_IFNAME_BAD = re.compile(r"[/:\s]")
_NETWORK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_CNI_VERSIONS_WITH_PREV_RESULT = ("0.4.0", "1.0.0", "1.1.0")


@dataclass(frozen=True)
class CNIInterface:
    name: str
    mac: str = ""
    sandbox: str = ""  # netns path for interfaces inside the container, else ""


@dataclass(frozen=True)
class CNIIPConfig:
    address: IPInterface
    gateway: IPAddress | None = None
    interface: int | None = None  # index into CNIResult.interfaces


@dataclass(frozen=True)
class CNIRoute:
    dst: IPNetwork
    gw: IPAddress | None = None


@dataclass(frozen=True)
class CNIDNS:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class CNIResult:
    cni_version: str
    interfaces: tuple[CNIInterface, ...] = ()
    ips: tuple[CNIIPConfig, ...] = ()
    routes: tuple[CNIRoute, ...] = ()
    dns: CNIDNS = field(default_factory=CNIDNS)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def sandbox_interfaces(self) -> list[CNIInterface]:
        return [i for i in self.interfaces if i.sandbox]

    def ips_for(self, ifname: str) -> list[CNIIPConfig]:
        """IPs assigned to the sandbox interface called ``ifname``."""
        out = []
        for ip in self.ips:
            if ip.interface is None or not 0 <= ip.interface < len(self.interfaces):
                continue
            iface = self.interfaces[ip.interface]
            if iface.name == ifname and iface.sandbox:
                out.append(ip)
        return out


def _field_error(what: str, value: Any) -> ValueError:
    return ValueError(f"CNI result: invalid {what}: {value!r}")


def parse_result(data: Mapping[str, Any]) -> CNIResult:
    """Parse a CNI result (0.3.x, 0.4.0 or 1.x JSON object) into dataclasses."""
    if not isinstance(data, Mapping):
        raise _field_error("result", data)
    interfaces = []
    for item in data.get("interfaces") or []:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise _field_error("interface", item)
        interfaces.append(
            CNIInterface(
                name=item["name"],
                mac=str(item.get("mac", "")),
                sandbox=str(item.get("sandbox", "")),
            )
        )
    ips = []
    for item in data.get("ips") or []:
        try:
            address = ipaddress.ip_interface(item["address"])
            gw = item.get("gateway")
            gateway = ipaddress.ip_address(gw) if gw else None
            idx = item.get("interface")
            if idx is not None and not isinstance(idx, int):
                raise TypeError(idx)
        except (KeyError, TypeError, ValueError):
            raise _field_error("ips entry", item) from None
        ips.append(CNIIPConfig(address=address, gateway=gateway, interface=idx))
    routes = []
    for item in data.get("routes") or []:
        try:
            gw = item.get("gw")
            routes.append(
                CNIRoute(
                    dst=ipaddress.ip_network(item["dst"], strict=False),
                    gw=ipaddress.ip_address(gw) if gw else None,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _field_error("route", item) from None
    dns_data = data.get("dns") or {}
    if not isinstance(dns_data, Mapping):
        raise _field_error("dns", dns_data)
    dns = CNIDNS(
        nameservers=tuple(dns_data.get("nameservers") or ()),
        domain=str(dns_data.get("domain") or ""),
        search=tuple(dns_data.get("search") or ()),
        options=tuple(dns_data.get("options") or ()),
    )
    return CNIResult(
        cni_version=str(data.get("cniVersion", "")),
        interfaces=tuple(interfaces),
        ips=tuple(ips),
        routes=tuple(routes),
        dns=dns,
        raw=dict(data),
    )


def validate_conflist(conflist: Mapping[str, Any]) -> None:
    """Raise ValueError naming the field if ``conflist`` is not a usable conflist."""
    if not isinstance(conflist, Mapping):
        raise ValueError(f"conflist: expected an object, got {type(conflist).__name__}")
    for key in ("cniVersion", "name"):
        if not isinstance(conflist.get(key), str) or not conflist[key]:
            raise ValueError(f"conflist.{key}: missing or empty: {conflist.get(key)!r}")
    if not _NETWORK_NAME_RE.match(conflist["name"]):
        # the spec's rule; plugins use the name in paths (IPAM dataDir) and rule comments
        raise ValueError(
            f"conflist.name: letters, digits, '_', '.', '-' (at most 100): {conflist['name']!r}"
        )
    plugins = conflist.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise ValueError(f"conflist.plugins: expected a non-empty list: {plugins!r}")
    for i, plugin in enumerate(plugins):
        ptype = plugin.get("type") if isinstance(plugin, Mapping) else None
        if not isinstance(ptype, str) or not ptype or "/" in ptype:
            raise ValueError(f"conflist.plugins[{i}].type: invalid: {ptype!r}")


def load_conflist(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a .conflist file."""
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    validate_conflist(data)
    return data


def validate_container_id(container_id: str) -> None:
    if not isinstance(container_id, str) or not _CONTAINER_ID_RE.match(container_id):
        raise ValueError(
            f"container_id: must be letters, digits, '_', '.', '-' and start with a "
            f"letter or digit: {container_id!r}"
        )


def validate_ifname(ifname: str) -> None:
    if (
        not isinstance(ifname, str)
        or not ifname
        or len(ifname) > 15
        or ifname in (".", "..")
        or _IFNAME_BAD.search(ifname)
    ):
        raise ValueError(f"ifname: invalid interface name: {ifname!r}")


def _plugin_config(
    conflist: Mapping[str, Any],
    plugin: Mapping[str, Any],
    prev_result: Mapping[str, Any] | None,
    runtime_config: Mapping[str, Any],
) -> dict[str, Any]:
    conf = dict(plugin)
    conf["name"] = conflist["name"]
    conf["cniVersion"] = conflist["cniVersion"]
    caps = plugin.get("capabilities") or {}
    rc = {k: v for k, v in runtime_config.items() if caps.get(k)}
    if rc:
        conf["runtimeConfig"] = rc
    else:
        conf.pop("runtimeConfig", None)
    if prev_result is not None:
        conf["prevResult"] = prev_result
    else:
        conf.pop("prevResult", None)
    return conf


@dataclass
class CNIRuntime:
    """Runs CNI plugins found in ``plugin_dirs`` (CNI_PATH)."""

    plugin_dirs: Sequence[Path] = DEFAULT_PLUGIN_DIRS
    timeout: float = DEFAULT_TIMEOUT

    def find_plugin(self, ptype: str, command: str = "find") -> Path:
        for d in self.plugin_dirs:
            candidate = Path(d) / ptype
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        dirs = ", ".join(str(d) for d in self.plugin_dirs)
        raise CNIPluginNotFound(ptype, command, f"plugin binary not found in {dirs}")

    def _env(
        self, command: str, container_id: str, netns: str, ifname: str, args: str
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=container_id,
            CNI_NETNS=netns,
            CNI_IFNAME=ifname,
            CNI_ARGS=args,
            CNI_PATH=os.pathsep.join(str(d) for d in self.plugin_dirs),
        )
        return env

    def exec_plugin(
        self,
        command: str,
        conf: Mapping[str, Any],
        *,
        container_id: str,
        netns: str,
        ifname: str,
        args: str = "",
    ) -> dict[str, Any] | None:
        """Run one plugin; return its parsed stdout (None when it printed nothing)."""
        ptype = str(conf["type"])
        binary = self.find_plugin(ptype, command)
        try:
            proc = subprocess.run(
                [str(binary)],
                input=json.dumps(conf).encode(),
                env=self._env(command, container_id, netns, ifname, args),
                capture_output=True,
                timeout=self.timeout,
                check=False,
                close_fds=True,
            )
        except subprocess.TimeoutExpired:
            raise CNIError(ptype, command, f"timed out after {self.timeout:g}s") from None
        except OSError as exc:
            raise CNIError(ptype, command, f"cannot run {binary}: {exc}") from None
        out = proc.stdout.decode(errors="replace").strip()
        err = proc.stderr.decode(errors="replace").strip()
        if proc.returncode != 0:
            raise _plugin_error(ptype, command, proc.returncode, out, err)
        if not out:
            return None
        try:
            data = json.loads(out)
        except json.JSONDecodeError:
            raise CNIError(ptype, command, f"invalid JSON on stdout: {out[:200]!r}") from None
        if not isinstance(data, dict):
            raise CNIError(ptype, command, f"result is not an object: {out[:200]!r}")
        return data

    def add(
        self,
        conflist: Mapping[str, Any],
        *,
        container_id: str,
        netns: str,
        ifname: str = "eth0",
        args: str = "",
        runtime_config: Mapping[str, Any] | None = None,
    ) -> CNIResult:
        """ADD every plugin of the list in order; return the final result.

        Nothing is rolled back here: callers run :meth:`delete` on failure,
        using the CNIError's ``failed_index`` and ``partial_result``.
        """
        validate_conflist(conflist)
        validate_container_id(container_id)
        validate_ifname(ifname)
        prev: dict[str, Any] | None = None
        for index, plugin in enumerate(conflist["plugins"]):
            conf = _plugin_config(conflist, plugin, prev, runtime_config or {})
            try:
                result = self.exec_plugin(
                    "ADD", conf, container_id=container_id, netns=netns, ifname=ifname, args=args
                )
                if result is None:
                    raise CNIError(str(plugin["type"]), "ADD", "no result on stdout")
            except CNIError as exc:
                exc.failed_index = index
                exc.partial_result = prev
                raise
            prev = result
        assert prev is not None
        return parse_result(prev)

    def check(
        self,
        conflist: Mapping[str, Any],
        prev_result: Mapping[str, Any],
        *,
        container_id: str,
        netns: str,
        ifname: str = "eth0",
        args: str = "",
        runtime_config: Mapping[str, Any] | None = None,
    ) -> None:
        """CHECK every plugin against the cached ADD result; raises CNIError."""
        validate_conflist(conflist)
        if conflist["cniVersion"] not in _CNI_VERSIONS_WITH_PREV_RESULT:
            raise ValueError(
                f"conflist.cniVersion: CHECK needs 0.4.0 or later: {conflist['cniVersion']!r}"
            )
        for plugin in conflist["plugins"]:
            conf = _plugin_config(conflist, plugin, prev_result, runtime_config or {})
            self.exec_plugin(
                "CHECK", conf, container_id=container_id, netns=netns, ifname=ifname, args=args
            )

    def delete(
        self,
        conflist: Mapping[str, Any],
        *,
        container_id: str,
        netns: str,
        ifname: str = "eth0",
        args: str = "",
        runtime_config: Mapping[str, Any] | None = None,
        prev_result: Mapping[str, Any] | None = None,
    ) -> None:
        """DEL every plugin in reverse order, even if some fail.

        Plugins must treat missing resources as success, so DEL can be repeated
        after a crash; pass ``netns=""`` when the namespace is already gone.
        The first failure is raised after all plugins ran.
        """
        validate_conflist(conflist)
        validate_container_id(container_id)
        validate_ifname(ifname)
        use_prev = conflist["cniVersion"] in _CNI_VERSIONS_WITH_PREV_RESULT
        first_error: CNIError | None = None
        for plugin in reversed(conflist["plugins"]):
            conf = _plugin_config(
                conflist, plugin, prev_result if use_prev else None, runtime_config or {}
            )
            try:
                self.exec_plugin(
                    "DEL", conf, container_id=container_id, netns=netns, ifname=ifname, args=args
                )
            except CNIError as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error


def _plugin_error(ptype: str, command: str, rc: int, out: str, err: str) -> CNIError:
    try:
        data = json.loads(out) if out else None
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and ("msg" in data or "code" in data):
        code = data.get("code")
        return CNIError(
            ptype,
            command,
            str(data.get("msg") or "unknown error"),
            code=code if isinstance(code, int) else 0,
            details=str(data.get("details") or ""),
        )
    text = err or out or f"exited with status {rc}"
    return CNIError(ptype, command, text[:2000])
