"""What the Driver service answers to TaskConfigSchema and Capabilities (§5.3).

Plain functions so the Driver servicer (service.py) and tests share one definition.
"""

from __future__ import annotations

from nomad_ctr._pb import driver_pb2, hclspec_pb2
from nomad_ctr.driver.config_schema import task_config_spec

__all__ = [
    "capabilities",
    "capabilities_response",
    "task_config_schema",
    "task_config_schema_response",
]

_Mode = driver_pb2.NetworkIsolationSpec


def capabilities() -> driver_pb2.DriverCapabilities:
    return driver_pb2.DriverCapabilities(
        send_signals=True,
        exec=True,
        fs_isolation=driver_pb2.DriverCapabilities.IMAGE,
        network_isolation_modes=[_Mode.HOST, _Mode.GROUP, _Mode.TASK],
        must_create_network=False,
        mount_configs=driver_pb2.DriverCapabilities.ANY_MOUNTS,
    )


def capabilities_response() -> driver_pb2.CapabilitiesResponse:
    return driver_pb2.CapabilitiesResponse(capabilities=capabilities())


def task_config_schema() -> hclspec_pb2.Spec:
    return task_config_spec()


def task_config_schema_response() -> driver_pb2.TaskConfigSchemaResponse:
    return driver_pb2.TaskConfigSchemaResponse(spec=task_config_spec())
