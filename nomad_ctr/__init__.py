"""nomad_ctr: a typed Python client for containerd, and a Nomad task driver built on it.

    from nomad_ctr import Client
    with Client.from_env() as client:
        result = client.containers.run("127.0.0.1:5000/nomad-ctr/plain", ["echo", "hi"])

Importing is cheap: the Go bridge (nomad_ctr._bridge) is loaded on first use.
"""

__version__ = "0.1.0"

from nomad_ctr import errors
from nomad_ctr.auth import Auth
from nomad_ctr.client import Client
from nomad_ctr.containers import Container, ContainerCollection
from nomad_ctr.events import EventStream
from nomad_ctr.exec import ExecProcess
from nomad_ctr.images import ImageCollection
from nomad_ctr.refs import normalize_ref
from nomad_ctr.spec import ContainerSpec, Device, Mount
from nomad_ctr.types import (
    ContainerInfo,
    CpuMetrics,
    Event,
    ExecOutput,
    ExecResult,
    ExitStatus,
    Image,
    ImageConfig,
    LayerProgress,
    LayerStatus,
    MemoryMetrics,
    Metrics,
    PidsMetrics,
    PullProgress,
    RunResult,
    TaskState,
    TaskStatus,
    Version,
)

__all__ = [
    "Auth",
    "Client",
    "Container",
    "ContainerCollection",
    "ContainerInfo",
    "ContainerSpec",
    "CpuMetrics",
    "Device",
    "Event",
    "EventStream",
    "ExecOutput",
    "ExecProcess",
    "ExecResult",
    "ExitStatus",
    "Image",
    "ImageCollection",
    "ImageConfig",
    "LayerProgress",
    "LayerStatus",
    "MemoryMetrics",
    "Metrics",
    "Mount",
    "PidsMetrics",
    "PullProgress",
    "RunResult",
    "TaskState",
    "TaskStatus",
    "Version",
    "__version__",
    "errors",
    "normalize_ref",
]
