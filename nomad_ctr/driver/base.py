"""The BasePlugin service: who we are, our agent-config schema, and SetConfig (§4).

PluginInfo and ConfigSchema must not depend on SetConfig (the agent's fingerprint launch
calls only those). SetConfig may come several times per process (twice in the
validation launch) and with or without nomad_config; it must not start side effects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import grpc

from nomad_ctr import __version__
from nomad_ctr._pb import base_pb2, base_pb2_grpc
from nomad_ctr.driver.config import DriverConfig, parse_driver_config
from nomad_ctr.driver.config_schema import driver_config_spec
from nomad_ctr.driver.config_values import ConfigError
from nomad_ctr.driver.errors import abort
from nomad_ctr.driver.logging import register_secret

__all__ = ["PLUGIN_API_VERSION", "PLUGIN_NAME", "BasePluginService", "ConfigListener"]

PLUGIN_NAME = "containerd-driver"  # the name jobs use in `driver = "..."`
PLUGIN_API_VERSION = "v0.1.0"

# called after every successful SetConfig: (config, nomad_config or None, api_version)
ConfigListener = Callable[[DriverConfig, "base_pb2.NomadConfig | None", str], None]

log = logging.getLogger("nomad_ctr.driver.base")


class BasePluginService(base_pb2_grpc.BasePluginServicer):
    def __init__(self, listeners: list[ConfigListener] | None = None) -> None:
        self._lock = threading.Lock()
        self._config: DriverConfig | None = None
        self._nomad_config: base_pb2.NomadConfig | None = None
        self._api_version = PLUGIN_API_VERSION
        self._listeners: list[ConfigListener] = list(listeners or [])

    # ---- state other parts of the plugin read -------------------------------------------

    @property
    def config(self) -> DriverConfig | None:
        """The last accepted driver config; None before the first SetConfig."""
        with self._lock:
            return self._config

    @property
    def nomad_config(self) -> base_pb2.NomadConfig | None:
        with self._lock:
            return self._nomad_config

    def add_listener(self, listener: ConfigListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    # ---- RPCs ---------------------------------------------------------------------------

    def PluginInfo(
        self, request: base_pb2.PluginInfoRequest, context: grpc.ServicerContext
    ) -> base_pb2.PluginInfoResponse:
        return base_pb2.PluginInfoResponse(
            type=base_pb2.DRIVER,
            plugin_api_versions=[PLUGIN_API_VERSION],
            plugin_version=__version__,
            name=PLUGIN_NAME,
        )

    def ConfigSchema(
        self, request: base_pb2.ConfigSchemaRequest, context: grpc.ServicerContext
    ) -> base_pb2.ConfigSchemaResponse:
        return base_pb2.ConfigSchemaResponse(spec=driver_config_spec())

    def SetConfig(
        self, request: base_pb2.SetConfigRequest, context: grpc.ServicerContext
    ) -> base_pb2.SetConfigResponse:
        try:
            config = parse_driver_config(request.msgpack_config)
        except ConfigError as exc:
            log.warning("rejected plugin config: %s", exc)
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if config.auth is not None:
            register_secret(config.auth.password)
            if config.auth.registry is None:
                log.warning("plugin auth has no registry: its credentials are offered to the registry of any "
                            "image a task pulls without auth of its own; set auth.registry to pin them to one host")
        nomad = request.nomad_config if request.HasField("nomad_config") else None
        version = request.plugin_api_version or PLUGIN_API_VERSION
        with self._lock:
            listeners = list(self._listeners)
        try:
            for listener in listeners:
                listener(config, nomad, version)
        except ConfigError as exc:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        with self._lock:
            self._config, self._nomad_config, self._api_version = config, nomad, version
        log.debug(
            "plugin config set",
            extra={"runtime": config.containerd_runtime, "namespace": config.namespace,
                   "address": config.address, "from_agent": nomad is not None},
        )
        return base_pb2.SetConfigResponse()
