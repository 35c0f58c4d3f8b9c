"""containers.run(network="bridge", ports=...): the container's own netns on the CNI
bridge (nomad_ctr.net sandbox, default BridgeConfig), released with the container.

The attachment is keyed by net.attachment_id(namespace, container id), and the net
library records it in a state file, so Container.delete() finds and removes it
whichever process created it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nomad_ctr import errors
from nomad_ctr._invalid import invalid

NETWORKS = ("bridge",)


def check_network(network: Any, ports: Iterable[Any] | Mapping[Any, Any] | None) -> tuple[Any, ...] | None:
    """Validate run()'s network/ports before anything is created; the port mappings
    (net.PortMapping) when a network is wanted, else None."""
    from nomad_ctr import net
    from nomad_ctr.net.ports import check_unique

    if network is None:
        if ports:
            raise invalid("ports", ports, 'port mappings need network="bridge"')
        return None
    if network not in NETWORKS:
        raise invalid("network", network, 'must be "bridge" (or None for a loopback-only netns)')
    if ports is None:
        return ()
    try:
        if isinstance(ports, Mapping):
            items = [net.PortMapping(host_port=h, container_port=c) for c, h in ports.items()]
        else:
            items = list(ports)  # check_unique refuses anything but net.PortMapping
        return tuple(check_unique(items))
    except ValueError as exc:
        raise invalid("ports", ports, str(exc)) from None


def attach(namespace: str, container_id: str, ports: tuple[Any, ...]) -> str:
    """Create the container's netns on the bridge; its path (for ContainerSpec.netns_path)."""
    from nomad_ctr import net

    aid = net.attachment_id(namespace, container_id)
    try:
        net.destroy_sandbox(aid)  # a crash may have left one with this id
        return net.create_sandbox(aid, ports=ports).netns_path
    except (net.NetError, OSError) as exc:
        raise errors.FailedPrecondition(f"network='bridge': {exc}") from None


def release(namespace: str, container_id: str) -> None:
    """Tear down the container's bridge network if it has one; idempotent."""
    from nomad_ctr import net

    try:
        aid = net.attachment_id(namespace, container_id)
    except ValueError:
        return
    state = net.BridgeConfig().state_dir / f"{aid}.json"
    if not state.exists() and not net.netns_exists(net.netns_name_for(aid)):
        return  # no network of ours (and no root needed to find that out)
    try:
        net.destroy_sandbox(aid)
    except (net.NetError, OSError) as exc:
        raise errors.FailedPrecondition(f"tearing down the network of {container_id}: {exc}") from None
