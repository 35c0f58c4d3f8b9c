"""The harness's stand-in for Nomad's bridge networking (called by nomad-harness).

Nomad gives a group with `network { mode = "bridge" }` a namespace at
/var/run/netns/<alloc_id>, attached with CNI (its own bridge `nomad` on
172.26.64.0/20, host-local, portmap with localhost SNAT), before any task starts,
and tears it down after the last task was destroyed. This does the same with
nomad_ctr.net on a test bridge and subnet that clash neither with a real Nomad nor
with the driver's own network (172.26.80.0/20) nor the API's (172.26.96.0/20).

  groupnet.py setup <alloc_id> '<json list of {"host_port", "to", "host_ip"}>'
      -> {"netns_path", "ip"} on stdout
  groupnet.py teardown <alloc_id>     (idempotent)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nomad_ctr import net

CONFIG = net.BridgeConfig(
    network_name="nomad-harness",
    bridge="nharness0",
    subnet="172.26.112.0/24",
    ipam_data_dir=Path("/run/nomad-harness/cni"),
    state_dir=Path("/run/nomad-harness/net"),
)
PROTOCOLS = ("tcp", "udp")  # Nomad maps both for each port


def setup(alloc_id: str, ports_json: str) -> dict[str, str]:
    ports = [
        net.PortMapping(int(p["host_port"]), int(p["to"]), proto, p.get("host_ip", ""))
        for p in json.loads(ports_json)
        for proto in PROTOCOLS
    ]
    teardown(alloc_id)  # a crashed earlier run with this alloc id
    path = net.create_netns(alloc_id)
    try:
        att = net.setup_network(alloc_id, path, ports=ports, config=CONFIG)
    except BaseException:
        net.delete_netns(path)
        raise
    return {"netns_path": str(path), "ip": att.ip}


def teardown(alloc_id: str) -> None:
    net.teardown_network(alloc_id, config=CONFIG)
    net.delete_netns(alloc_id)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "setup":
        print(json.dumps(setup(argv[1], argv[2])))
        return 0
    if len(argv) == 2 and argv[0] == "teardown":
        teardown(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ValueError, net.NetError) as exc:
        print(f"groupnet: {exc}", file=sys.stderr)
        sys.exit(1)
