"""client.containers and Container: containers and the task (process) running in them.

containerd keeps the container (metadata + snapshot) apart from its task (the running
process); Container keeps that split internally and offers both through one object.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nomad_ctr import _runnet, errors
from nomad_ctr._deadline import Deadline
from nomad_ctr._invalid import invalid
from nomad_ctr.auth import Auth
from nomad_ctr.client import DEFAULT, bridge, check_identifier, check_timeout
from nomad_ctr.exec import ExecProcess
from nomad_ctr.logs import LogFiles
from nomad_ctr.refs import normalize_ref
from nomad_ctr.signals import SignalLike, parse_signal
from nomad_ctr.spec import (
    ContainerSpec,
    _check_abs_path,
    _check_str,
    _check_str_list,
    _check_str_map,
)
from nomad_ctr.types import (
    ContainerInfo,
    ExecResult,
    ExitStatus,
    Image,
    Metrics,
    RunResult,
    TaskStatus,
)

if TYPE_CHECKING:
    from nomad_ctr.client import Client

__all__ = ["Container", "ContainerCollection"]

# Upper bound for reaping an exec process whose exit read() has already seen.
_EXEC_REAP = 5.0


def _not_found(exc: errors.NotFound, default: type[errors.NotFound]) -> errors.NotFound:
    """`exc` if the bridge already named what is missing, else `default` with its text."""
    if type(exc) is not errors.NotFound:
        return exc
    return default(exc.message, code=exc.code, method=exc.method)


class Container:
    """A containerd container and its task. `with container:` deletes it on exit."""

    def __init__(self, client: Client, info: ContainerInfo, spec: ContainerSpec | None = None):
        self._client = client
        self._info = info
        self._spec = spec  # known only for containers created through this object

    def __repr__(self) -> str:
        return f"<Container {self.id!r} image={self.image!r}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Container)
            and other.id == self.id
            and other._client.namespace == self._client.namespace
        )

    def __hash__(self) -> int:
        return hash((self._client.namespace, self.id))

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._info.labels)

    @property
    def image(self) -> str:
        return self._info.image

    @property
    def namespace(self) -> str:
        return self._client.namespace

    def info(self, *, timeout: float | None = DEFAULT) -> ContainerInfo:
        """Fresh metadata from containerd (errors.ContainerNotFound once deleted)."""
        self._info = self._client.containers._get_info(self.id, timeout)
        return self._info

    # --- task ---------------------------------------------------------------------

    def _task_call(self, method: str, req: dict[str, Any] | None = None, *,
                   timeout: Any = DEFAULT) -> dict[str, Any]:
        try:
            return self._client._call(method, {"id": self.id, **(req or {})}, timeout=timeout)
        except errors.NotFound as exc:
            raise _not_found(exc, errors.TaskNotFound) from None

    @property
    def log_files(self) -> LogFiles:
        """Where start() keeps output when no paths are given."""
        return LogFiles.for_container(self._client.state_dir, self._client.namespace, self.id)

    def start(self, *, stdout: str | None = None, stderr: str | None = None,
              timeout: float | None = DEFAULT) -> int:
        """Create and start the task; returns its pid.

        `stdout`/`stderr` are paths the shim writes to directly (FIFOs or regular files).
        A stream without a path goes to a file kept by the API, read with logs().
        """
        for name, value in (("stdout", stdout), ("stderr", stderr)):
            if value is not None:
                _check_abs_path(value, name)
        missing = tuple(name for name, value in (("stdout", stdout), ("stderr", stderr))
                        if value is None)
        if missing:
            kept = self.log_files.create(missing)
            stdout = stdout or kept.get("stdout")
            stderr = stderr or kept.get("stderr")
        req: dict[str, Any] = {"stdout": stdout, "stderr": stderr}
        if self._spec is not None and self._spec.tty:
            req["terminal"] = True
        self._task_call("tasks.create", req, timeout=timeout)
        try:
            resp = self._task_call("tasks.start", timeout=timeout)
        except BaseException:
            # A created but unstarted task holds a shim; do not leak it.
            try:
                self._task_call("tasks.delete", {"force": True})
            except errors.ContainerdError:
                pass
            raise
        return int(resp.get("pid") or 0)

    def status(self, *, timeout: float | None = DEFAULT) -> TaskStatus:
        """The task's state; errors.TaskNotFound if it has no task."""
        return TaskStatus.from_json(self._task_call("tasks.status", timeout=timeout))

    def wait(self, timeout: float | None = None) -> ExitStatus:
        """Wait for the task to exit (None: no deadline).

        errors.Timeout when `timeout` passes; errors.Unavailable when containerd went
        away meanwhile: the task may still run, so re-wait once it is back.

        oom_killed: after the exit, the task's cgroup (kept until the task is deleted)
        is read once; it is True when the kernel's OOM-kill counter of that cgroup
        (memory.oom_control oom_kill on v1, memory.events oom_kill on v2) is non-zero,
        i.e. the OOM killer killed a process of this container.
        """
        try:
            resp = self._client._call_blocking("tasks.wait", {"id": self.id},
                                               timeout=check_timeout(timeout))
        except errors.NotFound as exc:
            raise _not_found(exc, errors.TaskNotFound) from None
        return ExitStatus.from_json(resp, oom_killed=self._oom_killed())

    def _oom_killed(self) -> bool:
        try:
            metrics = self.stats()
        except errors.ContainerdError:
            return False  # the cgroup is gone (task deleted meanwhile): nothing to read
        return bool(metrics.memory.oom_events)

    def kill(self, signal: SignalLike = "SIGTERM", *, all: bool = False,
             timeout: float | None = DEFAULT) -> None:
        """Send `signal` (name, number or signal.Signals) to the task, or all its processes."""
        number = parse_signal(signal)
        self._task_call("tasks.kill", {"signal": number, "all": bool(all)}, timeout=timeout)

    def stats(self, *, timeout: float | None = DEFAULT) -> Metrics:
        return Metrics.from_json(self._task_call("tasks.metrics", timeout=timeout))

    def pids(self, *, timeout: float | None = DEFAULT) -> list[int]:
        return [int(p) for p in self._task_call("tasks.pids", timeout=timeout).get("pids") or ()]

    def logs(self, stream: str = "stdout") -> bytes:
        """Output kept by the API for a task started without paths for this stream."""
        files = self.log_files
        path = files.path(stream)
        if not path.exists():
            raise errors.FailedPrecondition(
                f"container {self.id}: no {stream} log kept by the API (the task was not "
                f"started, or was started with an explicit {stream} path)"
            )
        return files.read(stream)

    # --- exec ---------------------------------------------------------------------

    def exec_stream(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        tty: bool = False,
        stdin: bool = False,
        timeout: float | None = DEFAULT,
    ) -> ExecProcess:
        """Start `args` in the running task; returns the ExecProcess (a context manager)."""
        req: dict[str, Any] = {
            "exec_id": f"exec-{uuid.uuid4().hex[:12]}",
            "args": list(_check_str_list(args, "args", allow_empty_list=False)),
            "tty": bool(tty),
            "stdin": bool(stdin),
        }
        if env:
            req["env"] = [f"{k}={v}" for k, v in _check_str_map(env, "env").items()]
        if cwd is not None:
            req["cwd"] = _check_abs_path(cwd, "cwd")
        if user is not None:
            req["user"] = _check_str(str(user), "user")
        resp = self._task_call("tasks.exec", req, timeout=timeout)
        handle = bridge().Handle(int(resp["exec"]), "exec")
        return ExecProcess(self._client, self.id, req["exec_id"], handle, int(resp.get("pid") or 0))

    def exec(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run `args` in the running task and collect its output and exit code.

        On timeout the process is killed and errors.Timeout raised.
        """
        argv = list(_check_str_list(args, "args", allow_empty_list=False))
        deadline = Deadline(check_timeout(timeout), f"exec {argv!r} in {self.id}")
        out, err = bytearray(), bytearray()
        with self.exec_stream(argv, env=env, cwd=cwd, user=user,
                              timeout=deadline.cap(self._client.timeout)) as proc:
            while True:
                if deadline.expired():
                    proc.kill("SIGKILL")
                    raise deadline.error()
                chunk = proc.read(deadline.cap(1.0))
                out += chunk.stdout
                err += chunk.stderr
                if chunk.exited:
                    break
            # read() saw the exit, so this returns at once; it also deletes the process.
            code = proc.wait(_EXEC_REAP)
        return ExecResult(exit_code=code, stdout=bytes(out), stderr=bytes(err))

    # --- lifetime -----------------------------------------------------------------

    def delete(self, force: bool = False, *, timeout: float | None = DEFAULT) -> None:
        """Delete the task, the container and its snapshot, and the API-kept logs.

        Without `force` a running task is an errors.FailedPrecondition; with it the
        task is killed (SIGKILL) first.
        """
        if not force:
            try:
                self._task_call("tasks.delete", timeout=timeout)
            except errors.TaskNotFound:
                pass
        try:
            self._client._call("containers.delete", {"id": self.id, "force": bool(force)},
                               timeout=timeout)
        except errors.NotFound as exc:
            self.log_files.remove()
            _runnet.release(self._client.namespace, self.id)
            raise _not_found(exc, errors.ContainerNotFound) from None
        self.log_files.remove()
        _runnet.release(self._client.namespace, self.id)  # run(network="bridge")

    def __enter__(self) -> Container:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.delete(force=True)
        except errors.ContainerNotFound:
            pass


class ContainerCollection:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _get_info(self, id: str, timeout: Any) -> ContainerInfo:
        check_identifier(id, "id")
        try:
            return ContainerInfo.from_json(
                self._client._call("containers.get", {"id": id}, timeout=timeout)
            )
        except errors.NotFound as exc:
            raise _not_found(exc, errors.ContainerNotFound) from None

    def create(
        self,
        id: str,
        image: str | Image,
        *,
        spec: ContainerSpec | None = None,
        labels: Mapping[str, str] | None = None,
        runtime: str | None = None,
        snapshotter: str | None = None,
        timeout: float | None = DEFAULT,
    ) -> Container:
        """Create container `id` from a local image (pull it first); no task yet."""
        check_identifier(id, "id")
        ref = image.name if isinstance(image, Image) else normalize_ref(image, "image")
        spec = ContainerSpec() if spec is None else spec
        if not isinstance(spec, ContainerSpec):
            raise invalid("spec", spec, "must be a nomad_ctr.ContainerSpec")
        req: dict[str, Any] = {"id": id, "image": ref, "spec": spec.to_bridge()}
        if labels:
            req["labels"] = _check_str_map(labels, "labels")
        if runtime is not None:
            req["runtime"] = _check_str(runtime, "runtime")
        if snapshotter is not None:
            req["snapshotter"] = _check_str(snapshotter, "snapshotter")
        try:
            resp = self._client._call("containers.create", req, timeout=timeout)
        except errors.NotFound as exc:
            raise _not_found(exc, errors.ImageNotFound) from None
        return Container(self._client, ContainerInfo.from_json(resp), spec)

    def get(self, id: str, *, timeout: float | None = DEFAULT) -> Container:
        """errors.ContainerNotFound if there is no container `id` in this namespace."""
        return Container(self._client, self._get_info(id, timeout))

    def list(self, labels: Mapping[str, str] | None = None, *,
             timeout: float | None = DEFAULT) -> list[Container]:
        """Containers in this namespace; with `labels`, those carrying all of them."""
        req: dict[str, Any] = {}
        if labels:
            req["labels"] = _check_str_map(labels, "labels")
        resp = self._client._call("containers.list", req, timeout=timeout)
        return [Container(self._client, ContainerInfo.from_json(d))
                for d in resp.get("containers") or ()]

    def run(
        self,
        image: str | Image,
        args: Sequence[str] | None = None,
        *,
        id: str | None = None,
        spec: ContainerSpec | None = None,
        labels: Mapping[str, str] | None = None,
        auth: Auth | None = None,
        timeout: float | None = None,
        remove: bool = True,
        network: Any = None,
        ports: Iterable[Any] | None = None,
    ) -> RunResult:
        """Pull if missing, create, start, wait, collect output, delete (unless not `remove`).

        Always returns a RunResult, whatever the exit code. `timeout` covers the whole
        run; when it passes the task is killed (and the container deleted if `remove`).
        `network="bridge"`: a netns of its own on the CNI bridge (nomad_ctr.net), with
        `ports` ({container_port: host_port} or net.PortMapping) published; removed
        with the container. Needs root.
        """
        mappings = _runnet.check_network(network, ports)
        spec = ContainerSpec() if spec is None else spec
        if not isinstance(spec, ContainerSpec):
            raise invalid("spec", spec, "must be a nomad_ctr.ContainerSpec")
        if mappings is not None and (spec.host_network or spec.netns_path):
            raise invalid("network", network, "cannot be combined with spec.host_network or spec.netns_path")
        if args is not None:
            spec = spec.replace(args=args)
        ref = image.name if isinstance(image, Image) else normalize_ref(image, "image")
        cid = check_identifier(id, "id") if id is not None else f"run-{uuid.uuid4().hex[:16]}"
        deadline = Deadline(check_timeout(timeout), f"run {ref}")
        def quick() -> float:
            return deadline.cap(self._client.timeout)


        images = self._client.images
        if not isinstance(image, Image) and not images.exists(ref, timeout=quick()):
            images.pull(ref, auth=auth, timeout=deadline.remaining())
        if mappings is not None:
            try:  # attach() clears a crash's leftover network of this id: never a live one
                self._get_info(cid, quick())
                raise errors.AlreadyExists(f"container {cid!r} already exists")
            except errors.ContainerNotFound:
                pass
            spec = spec.replace(netns_path=_runnet.attach(self._client.namespace, cid, mappings))
        try:
            container = self.create(cid, ref, spec=spec, labels=labels, timeout=quick())
        except BaseException:
            if mappings is not None:
                _runnet.release(self._client.namespace, cid)
            raise
        try:
            container.start(timeout=quick())
            status = container.wait(timeout=deadline.remaining())
            stdout, stderr = container.logs("stdout"), container.logs("stderr")
        except BaseException:
            _stop_quietly(container, delete=remove)
            raise
        if remove:
            container.delete(force=True)
        return RunResult(
            exit_code=status.exit_code,
            stdout=stdout,
            stderr=stderr,
            container_id=cid,
            oom_killed=status.oom_killed,
        )


def _stop_quietly(container: Container, *, delete: bool) -> None:
    """Best-effort cleanup after a failed run; the original error is what matters."""
    try:
        if delete:
            container.delete(force=True)
        else:
            container.kill("SIGKILL")
    except errors.ContainerdError:
        pass
