"""The three files a networked container gets bind-mounted into /etc.

``write_etc_files(task_dir, ...)`` writes ``hosts``, ``resolv.conf`` and
``hostname`` there; calling it again (e.g. after the IP is known) rewrites
them in place, so existing bind mounts see the new content.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .files import write_in_place
from .hostname import validate_hostname
from .hosts import build_hosts
from .resolvconf import ResolvConf, container_resolv_conf, write_resolv_conf


@dataclass(frozen=True)
class EtcFiles:
    hosts: Path
    resolv_conf: Path
    hostname: Path

    def mounts(self) -> list[tuple[Path, str]]:
        """(host path, container path) pairs to bind-mount."""
        return [
            (self.hosts, "/etc/hosts"),
            (self.resolv_conf, "/etc/resolv.conf"),
            (self.hostname, "/etc/hostname"),
        ]


def write_etc_files(
    directory: str | os.PathLike[str],
    *,
    hostname: str,
    ip: str | None = None,
    extra_hosts: Iterable[str] = (),
    dns: ResolvConf | None = None,
    ipv6: bool = True,
) -> EtcFiles:
    """Write hosts, resolv.conf and hostname into ``directory``.

    ``dns`` None means the host's resolv.conf without localhost servers
    (pass ``ipv6=False`` for an IPv4-only network to drop IPv6 servers too).
    Everything is validated before anything is written.
    """
    validate_hostname(hostname)
    hosts = build_hosts(hostname, ip, extra_hosts=extra_hosts, ipv6=ipv6)
    resolv = dns if dns is not None else container_resolv_conf(ipv6=ipv6)
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    files = EtcFiles(base / "hosts", base / "resolv.conf", base / "hostname")
    write_in_place(files.hosts, hosts)
    write_resolv_conf(files.resolv_conf, resolv)
    write_in_place(files.hostname, hostname + "\n")
    return files
