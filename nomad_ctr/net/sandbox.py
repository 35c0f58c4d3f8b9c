"""One call to give a container its own namespace on the bridge, one to remove it.

For callers that own the namespace too (the API's ``network="bridge"``, the
driver for tasks without a group network): pass ``attachment.netns_path`` to
containerd as the container's netns path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .attach import NetworkAttachment, load_attachment, setup_network, teardown_network
from .bridge import BridgeConfig
from .cni import validate_container_id
from .netns import create_netns, delete_netns, netns_path
from .ports import PortMapping

NETNS_PREFIX = "nomad-ctr-"


def attachment_id(namespace: str, container_id: str) -> str:
    """A host-unique ID for a container: CNI, IPAM and our state are per host,
    while containerd IDs are only unique within a containerd namespace."""
    joined = f"{namespace}.{container_id}"
    try:
        validate_container_id(joined)
    except ValueError:
        raise ValueError(
            f"namespace/container_id: cannot form an attachment ID from "
            f"{namespace!r} and {container_id!r}"
        ) from None
    return joined


def netns_name_for(container_id: str) -> str:
    """The /var/run/netns name we use for ``container_id``."""
    validate_container_id(container_id)
    return NETNS_PREFIX + container_id


def create_sandbox(
    container_id: str,
    *,
    ports: Iterable[PortMapping] = (),
    config: BridgeConfig | None = None,
    conflist: Mapping[str, Any] | None = None,
) -> NetworkAttachment:
    """Create /var/run/netns/nomad-ctr-<id> and attach it to the bridge network
    (or to ``conflist``'s network, see :func:`setup_network`).

    ``container_id`` must be unique on the host (see :func:`attachment_id`).
    On failure the namespace is removed again before the error is raised. If
    a crash left this ID's namespace behind, call :func:`destroy_sandbox` first.
    """
    path = create_netns(netns_name_for(container_id))
    try:
        return setup_network(container_id, path, ports=ports, config=config, conflist=conflist)
    except BaseException:
        delete_netns(path)
        raise


def destroy_sandbox(container_id: str, *, config: BridgeConfig | None = None) -> None:
    """Detach and delete the namespace made by :func:`create_sandbox`; idempotent."""
    attachment = load_attachment(container_id, config=config)
    teardown_network(container_id, config=config)
    delete_netns(attachment.netns_path if attachment else netns_path(netns_name_for(container_id)))
