"""Remove the bridge plugin's per-container masquerade rules when it cannot.

The bridge plugin (1.1.x) learns which masquerade rules to delete from the
addresses on the container's interface, so when the namespace is already gone
(or the interface lost its address) its DEL leaves a POSTROUTING rule and a
``CNI-<hash>`` chain behind for good. Those rules carry the comment
``name: "<network>" id: "<container id>"``, which is what we match on.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

from .errors import NetError


def _ipt(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, "-w", *args], capture_output=True, text=True, check=False)


def masquerade_comment(network_name: str, container_id: str) -> str:
    return f'name: "{network_name}" id: "{container_id}"'


def remove_masquerade_rules(network_name: str, container_id: str, *, ipv6: bool = False) -> int:
    """Delete POSTROUTING rules (and their CNI- chains) tagged for this container.

    Returns how many rules were removed; 0 when the plugin already did it.
    """
    binary = shutil.which("ip6tables" if ipv6 else "iptables")
    if binary is None:
        return 0
    listing = _ipt(binary, "-t", "nat", "-S", "POSTROUTING")
    if listing.returncode != 0:
        raise NetError(f"{binary} -t nat -S POSTROUTING: {listing.stderr.strip()}")
    comment = masquerade_comment(network_name, container_id)
    removed = 0
    for line in listing.stdout.splitlines():
        args = shlex.split(line)
        if args[:2] != ["-A", "POSTROUTING"] or comment not in args:
            continue
        result = _ipt(binary, "-t", "nat", "-D", "POSTROUTING", *args[2:])
        if result.returncode != 0:
            raise NetError(f"{binary}: cannot delete {line!r}: {result.stderr.strip()}")
        removed += 1
        target = args[args.index("-j") + 1] if "-j" in args else ""
        if target.startswith("CNI-"):
            _ipt(binary, "-t", "nat", "-F", target)
            _ipt(binary, "-t", "nat", "-X", target)
    return removed
