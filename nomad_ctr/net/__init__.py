"""Container networking: namespaces, CNI, /etc/hosts, resolv.conf. Knows nothing of Nomad.

Nothing in this package forks without exec (safe beside gobridge's Go runtime).
"""

from .attach import (
    NetworkAttachment,
    check_network,
    load_attachment,
    setup_network,
    teardown_network,
)
from .bridge import BridgeConfig, build_conflist, remove_bridge
from .cni import CNIDNS, CNIInterface, CNIIPConfig, CNIResult, CNIRoute, CNIRuntime, parse_result
from .errors import CNIError, CNIPluginNotFound, NetError, NetnsError
from .etcfiles import EtcFiles, write_etc_files
from .hostname import default_hostname, is_valid_hostname, validate_hostname
from .hosts import HostEntry, build_hosts, parse_extra_host, write_hosts
from .netns import (
    call_in_netns,
    create_netns,
    delete_netns,
    list_netns,
    netns_exists,
    netns_path,
    popen_in_netns,
    run_in_netns,
)
from .ports import PortMapping
from .resolvconf import (
    ResolvConf,
    build_resolv_conf,
    container_resolv_conf,
    parse_resolv_conf,
    write_resolv_conf,
)
from .sandbox import attachment_id, create_sandbox, destroy_sandbox, netns_name_for

__all__ = [
    "CNIDNS",
    "BridgeConfig",
    "CNIError",
    "CNIIPConfig",
    "CNIInterface",
    "CNIPluginNotFound",
    "CNIResult",
    "CNIRoute",
    "CNIRuntime",
    "EtcFiles",
    "HostEntry",
    "NetError",
    "NetnsError",
    "NetworkAttachment",
    "PortMapping",
    "ResolvConf",
    "attachment_id",
    "build_conflist",
    "build_hosts",
    "build_resolv_conf",
    "call_in_netns",
    "check_network",
    "container_resolv_conf",
    "create_netns",
    "create_sandbox",
    "default_hostname",
    "delete_netns",
    "destroy_sandbox",
    "is_valid_hostname",
    "list_netns",
    "load_attachment",
    "netns_exists",
    "netns_name_for",
    "netns_path",
    "parse_extra_host",
    "parse_resolv_conf",
    "parse_result",
    "popen_in_netns",
    "remove_bridge",
    "run_in_netns",
    "setup_network",
    "teardown_network",
    "validate_hostname",
    "write_etc_files",
    "write_hosts",
    "write_resolv_conf",
]
