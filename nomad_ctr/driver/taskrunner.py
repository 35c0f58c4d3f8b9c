"""The task lifecycle behind the Driver RPCs: start (as named steps), recover, stop,
destroy. Errors are DriverErrors (errors.py) so the service maps them 1:1 to statuses.

StartTask steps: parse -> image -> network -> spec -> task. Everything before the
image step is pure validation (INVALID_ARGUMENT, nothing created): the parse step also
checks the network step's inputs (netplan.check_network) and the job's mounts against
the /etc files the network step will mount. A failure after the
container was created rolls back task, container, snapshot and generated files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from nomad_ctr import (
    Auth,
    Client,
    Container,
    ContainerSpec,
    Image,
    PullProgress,
    TaskState,
    errors,
)
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import (
    ConfigError,
    DriverConfig,
    TaskConfig,
    check_task_allowed,
    parse_task_config,
)
from nomad_ctr.driver.connection import Connection, NotConfigured
from nomad_ctr.driver.errors import (
    DriverError,
    FailedPrecondition,
    InvalidArgument,
    Recoverable,
    TaskNotFound,
)
from nomad_ctr.driver.events import TaskEvents
from nomad_ctr.driver.exits import ExitWatcher, check_task, read_oom_counter
from nomad_ctr.driver.handle import TaskHandle
from nomad_ctr.driver.netplan import (
    NetCheck,
    TaskNetPlan,
    bridge_config,
    check_network,
    network_override,
    plan_network,
    release_network,
)
from nomad_ctr.driver.specbuild import (
    LABEL_PREFIX,
    build_spec,
    container_id_for,
    task_labels,
)
from nomad_ctr.driver.state import DriverState, StateError, TaskStore, decode_state
from nomad_ctr.net import NetError, attachment_id, load_attachment
from nomad_ctr.refs import parse_ref

__all__ = ["TaskRunner", "as_driver_error"]

log = logging.getLogger("nomad_ctr.driver.taskrunner")

PROGRESS_EVERY = 2.0  # seconds between pull progress events
KILL_WAIT = 15.0  # how long StopTask/DestroyTask wait for an exit after SIGKILL
_NON_RECOVERABLE = (errors.InvalidArgument, errors.Unauthenticated, errors.PermissionDenied, errors.NotFound)


def as_driver_error(exc: BaseException, doing: str) -> DriverError:
    """A containerd/API error as a status for Nomad: transient ones recoverable."""
    if isinstance(exc, DriverError):
        return exc
    if isinstance(exc, (ConfigError, StateError)):
        return InvalidArgument(str(exc))
    if isinstance(exc, NotConfigured):
        return FailedPrecondition(str(exc), recoverable=True)
    if isinstance(exc, errors.ContainerdError):
        text = f"{doing}: {exc}"
        if isinstance(exc, errors.InvalidArgument):
            return InvalidArgument(text)
        if isinstance(exc, _NON_RECOVERABLE):
            return FailedPrecondition(text, recoverable=False)
        return Recoverable(text)
    if isinstance(exc, OSError):
        return Recoverable(f"{doing}: {exc}")
    return DriverError(f"{doing}: {exc}")


def _now_ns() -> int:
    return time.time_ns()


class _PullGate:
    """One pull per image ref at a time; a waiter reuses a pull that just finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, tuple[threading.Lock, list[float]]] = {}

    def get(self, ref: str) -> tuple[threading.Lock, list[float]]:
        with self._lock:
            return self._refs.setdefault(ref, (threading.Lock(), [0.0]))


class TaskRunner:
    def __init__(self, conn: Connection, store: TaskStore, watcher: ExitWatcher, events: TaskEvents) -> None:
        self.conn = conn
        self.store = store
        self.watcher = watcher
        self.events = events
        self._pulls = _PullGate()

    # ---- StartTask ------------------------------------------------------------------------

    def start(self, task: driver_pb2.TaskConfig) -> tuple[TaskHandle, bytes]:
        from nomad_ctr.driver.state import encode_state

        if not task.id:
            raise InvalidArgument("invalid task config: id: is required")
        if not self.store.reserve(task.id):
            raise FailedPrecondition(f"task with id {task.id!r} is already started")
        try:
            tc, driver, checked = self._step_parse(task)
            client = self.conn.client()
            if not self.watcher.ensure_running():
                raise Recoverable("containerd event stream is not available (is containerd up?)")
            image = self._step_image(task, tc, driver)
            cid = container_id_for(task.alloc_id, task.name)
            self._clear_leftover(cid)
            net = self._step_network(task, tc, cid, client.namespace, driver, checked)
            try:
                spec = build_spec(task, tc, driver, net)
                handle = self._step_task(task, cid, image, spec, driver, net, client.namespace)
            except BaseException:
                _release_quietly(net)
                raise
            return handle, encode_state(handle.state)
        except BaseException as exc:
            self.store.release(task.id)
            if isinstance(exc, Exception):
                err = as_driver_error(exc, "start task")
                log.warning("start task failed", extra={"task_id": task.id, "error": err.message})
                raise err from None
            raise

    def _step_parse(self, task: driver_pb2.TaskConfig) -> tuple[TaskConfig, DriverConfig, NetCheck]:
        tc = parse_task_config(task.msgpack_driver_config)
        driver = self.conn.config
        if not driver.enabled:
            raise FailedPrecondition("the containerd-driver is disabled (enabled = false)", recoverable=False)
        check_task_allowed(tc, driver)
        checked = check_network(task, tc, driver)  # DNS, ports, cni_conf_dir's network list
        # validation only: mounts (also against the /etc files to come), user, limits
        build_spec(task, tc, driver, checked.dry_plan(tc.host_network))
        return tc, driver, checked

    def _emit(self, task: driver_pb2.TaskConfig, message: str, **annotations: str) -> None:
        self.events.emit(task_id=task.id, alloc_id=task.alloc_id, task_name=task.name,
                         message=message, annotations=annotations)

    def _step_image(self, task: driver_pb2.TaskConfig, tc: TaskConfig, driver: DriverConfig) -> Image:
        """Use the local image unless the ref is a :latest tag; else pull it."""
        ref = parse_ref(tc.image, "image")
        name = str(ref)
        client = self.conn.client()
        always = ref.digest is None and ref.tag == "latest"
        lock, last = self._pulls.get(name)
        with lock:
            if not always or time.monotonic() - last[0] < 5.0:
                try:
                    return client.images.get(name)
                except errors.ImageNotFound:
                    pass
            # a task's auth is for its own image; the agent's only for its registry, if named
            cred = tc.auth or driver.auth
            auth = Auth(cred.username, cred.password, registry=cred.registry) if cred else None
            self._emit(task, f"Pulling image {name}", image=name)
            progress = _ProgressEvents(lambda m: self._emit(task, m, image=name))
            try:
                image = client.images.pull(
                    name, auth=auth, timeout=tc.image_pull_timeout, progress=progress,
                    plain_http_hosts=driver.insecure_registries,
                )
            except errors.Timeout:
                raise Recoverable(
                    f"pulling image {name} timed out after {tc.image_pull_timeout:g}s (image_pull_timeout)"
                ) from None
            except (errors.Unauthenticated, errors.PermissionDenied) as exc:
                raise FailedPrecondition(f"pull access denied for {name}: {exc}", recoverable=False) from None
            except errors.NotFound as exc:
                raise FailedPrecondition(f"image {name} not found: {exc}", recoverable=False) from None
            except errors.ContainerdError as exc:
                raise as_driver_error(exc, f"pulling image {name}") from None
            last[0] = time.monotonic()
        self._emit(task, f"Pulled image {name}", image=name)
        return image

    def _step_network(self, task: driver_pb2.TaskConfig, tc: TaskConfig, cid: str, namespace: str,
                      driver: DriverConfig, checked: NetCheck) -> TaskNetPlan:
        try:
            return plan_network(task, tc, cid, namespace=namespace, driver=driver, checked=checked)
        except (ConfigError, ValueError) as exc:
            raise InvalidArgument(str(exc)) from None
        except NetError as exc:
            raise Recoverable(f"setting up the task's network: {exc}") from None

    def _step_task(self, task: driver_pb2.TaskConfig, cid: str, image: Image, spec: ContainerSpec,
                   driver: DriverConfig, net: TaskNetPlan, namespace: str) -> TaskHandle:
        client = self.conn.client()
        container = client.containers.create(
            cid, image, spec=spec, labels=task_labels(task), runtime=driver.containerd_runtime
        )
        try:
            started = datetime.now(timezone.utc)
            container.start(stdout=task.stdout_path or "/dev/null", stderr=task.stderr_path or "/dev/null")
            state = DriverState(
                task_id=task.id, container_id=cid, namespace=namespace, alloc_id=task.alloc_id,
                task_name=task.name, image=image.name, started_at_ns=int(started.timestamp() * 1e9),
                stdout_path=task.stdout_path, stderr_path=task.stderr_path, etc_dir=net.etc_dir,
                net_id=net.net_id, own_netns=net.own_netns,
            )
            handle = TaskHandle(state, container, started_at=started)
            handle.network = network_override(net)
            self.store.add(handle)
        except BaseException:
            _delete_quietly(container)
            raise
        try:
            check_task(handle)  # an exit before we were tracking it
        except errors.ContainerdError:
            pass
        log.info("task started", extra={"task_id": task.id, "container_id": cid, "image": image.name})
        return handle

    def _clear_leftover(self, cid: str) -> None:
        """Remove a container with our id that no running tracked task owns."""
        for old in self.store.by_container(cid):
            if old.is_running():
                raise FailedPrecondition(
                    f"task {old.task_id} of this allocation and task name is still running", recoverable=True
                )
            self.store.remove(old.task_id)
            old.destroyed = True
            self._release(old.state)
        client = self.conn.client()
        try:
            leftover = client.containers.get(cid)
        except errors.ContainerNotFound:
            return
        log.warning("removing leftover container", extra={"container_id": cid})
        leftover.delete(force=True)

    # ---- RecoverTask ----------------------------------------------------------------------

    def recover(self, proto: driver_pb2.TaskHandle, task_id: str = "") -> None:
        state = decode_state(proto.driver_state)
        task_id = task_id or proto.config.id or state.task_id
        if task_id != state.task_id:
            raise InvalidArgument(f"task id {task_id!r} does not match the handle's driver_state ({state.task_id!r})")
        if self.store.get(task_id) is not None:
            return
        client = self.conn.client_for(state.namespace)
        try:
            container = client.containers.get(state.container_id)
        except errors.ContainerNotFound:
            raise FailedPrecondition(
                f"cannot recover task {task_id}: container {state.container_id} no longer exists"
            ) from None
        self.watcher.ensure_running()
        handle = TaskHandle(state, container)
        handle.network = self._recovered_network(state, proto.config)
        try:
            status = container.status()
        except errors.TaskNotFound:
            raise FailedPrecondition(
                f"cannot recover task {task_id}: container {state.container_id} has no task (never started or deleted)"
            ) from None
        if not self.store.add(handle):
            return  # a concurrent RecoverTask won
        if status.state is TaskState.STOPPED:
            code = status.exit_code if status.exit_code is not None else 255
            handle.on_exit(code, status.exited_at, oom_counter=read_oom_counter(handle) if code == 137 else False)
        else:
            check_task(handle)
        log.info("task recovered", extra={"task_id": task_id, "container_id": state.container_id,
                                          "state": status.state.value})

    # ---- StopTask / DestroyTask -------------------------------------------------------------

    def get(self, task_id: str) -> TaskHandle:
        handle = self.store.get(task_id)
        if handle is None:
            raise TaskNotFound()
        return handle

    def stop(self, task_id: str, timeout: float, signal: str) -> None:
        handle = self.get(task_id)
        if handle.exited.is_set():
            return
        self._kill(handle, signal or "SIGTERM", all_=False)
        if handle.wait(max(0.0, timeout)) is not None:
            return
        log.info("task did not stop in time; killing it", extra={"task_id": task_id, "timeout": timeout})
        self._kill(handle, "SIGKILL", all_=True)
        if handle.wait(KILL_WAIT) is None:
            check_task(handle)
            if not handle.exited.is_set():
                raise FailedPrecondition(f"task {task_id} did not exit after SIGKILL", recoverable=True)

    def _kill(self, handle: TaskHandle, signal: str | int, *, all_: bool) -> None:
        try:
            handle.container.kill(signal, all=all_)
        except (errors.NotFound, errors.FailedPrecondition):
            check_task(handle)  # already gone: record how it ended
        except errors.InvalidArgument as exc:
            raise InvalidArgument(f"invalid signal {signal!r}: {exc}") from None

    def destroy(self, task_id: str, force: bool) -> None:
        handle = self.store.get(task_id)
        if handle is None:
            self._destroy_untracked(task_id)  # idempotent
            return
        if handle.is_running():
            try:
                check_task(handle)
            except errors.ContainerdError:
                pass
        if handle.is_running():
            if not force:
                raise FailedPrecondition(f"task {task_id} is still running; stop it first or use force")
            self._kill(handle, "SIGKILL", all_=True)
            if handle.wait(KILL_WAIT) is None:
                handle.fail("killed by DestroyTask", exit_code=137)
        handle.destroyed = True
        try:
            handle.container.delete(force=True)
        except errors.ContainerNotFound:
            pass
        except errors.ContainerdError as exc:
            handle.destroyed = False
            raise as_driver_error(exc, f"destroy task {task_id}") from None
        try:
            self._release(handle.state)
        except NetError as exc:  # the container is gone; a retried DestroyTask finishes this
            raise Recoverable(f"destroy task {task_id}: tearing down its network: {exc}") from None
        self.store.remove(task_id)
        log.info("task destroyed", extra={"task_id": task_id, "container_id": handle.container_id})


    def _destroy_untracked(self, task_id: str) -> None:
        """Nomad destroys a task whose recovery failed: remove its container if we
        can find it by label, so it is not left running next to its replacement."""
        try:
            client = self.conn.client()
            found = client.containers.list(labels={LABEL_PREFIX + "task_id": task_id})
        except (errors.ContainerdError, NotConfigured):
            return
        cids = {container.id for container in found}
        for container in found:
            log.warning("destroying untracked container of task", extra={"task_id": task_id,
                                                                         "container_id": container.id})
            _delete_quietly(container)
        # The container may be gone already (its recovery failed for that reason): the
        # task id names alloc and task, hence the container id and its network.
        alloc_id, _, rest = task_id.partition("/")
        task_name = rest.rpartition("/")[0]
        if alloc_id and task_name:
            cid = container_id_for(alloc_id, task_name)
            if not self.store.by_container(cid) and (cid in cids or not _container_exists(client, cid)):
                cids.add(cid)
        for cid in cids:
            try:
                self._release(DriverState(task_id=task_id, container_id=cid, namespace=client.namespace,
                                          net_id=attachment_id(client.namespace, cid)))
            except (NetError, ValueError) as exc:
                log.warning("could not tear down the network of an untracked task",
                            extra={"task_id": task_id, "error": str(exc)})

    def _driver_config(self) -> DriverConfig | None:
        return self.conn.config if self.conn.configured else None

    def _release(self, state: DriverState) -> None:
        """Remove the task's generated files and the network the driver made for it."""
        release_network(etc_dir=state.etc_dir, net_id=state.net_id, own_netns=state.own_netns,
                        driver=self._driver_config())

    def _recovered_network(self, state: DriverState, config: driver_pb2.TaskConfig) -> driver_pb2.NetworkOverride | None:
        if not state.net_id:
            return None
        try:
            att = load_attachment(state.net_id, config=bridge_config(self._driver_config()))
        except NetError as exc:
            log.warning("recovered task's network state is unreadable", extra={"task_id": state.task_id,
                                                                                 "error": str(exc)})
            return None
        if att is None:
            return None
        ports = {p.label: (p.to if p.to > 0 else p.value) for p in config.resources.ports if p.label}
        return network_override(att.ip, ports)


class _ProgressEvents:
    """Pull progress as a task event at most every PROGRESS_EVERY seconds, once layers
    are known (the manifest has been read)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._last = 0.0

    def __call__(self, p: PullProgress) -> None:
        now = time.monotonic()
        if p.done or not p.layers or now - self._last < PROGRESS_EVERY:
            return
        self._last = now
        mib = 1024 * 1024
        self._emit(
            f"Pulling image {p.ref}: {p.layers_done}/{len(p.layers)} layers, "
            f"{p.offset / mib:.1f} of {p.total / mib:.1f} MiB"
        )


def _container_exists(client: Client, cid: str) -> bool:
    try:
        client.containers.get(cid)
    except errors.ContainerNotFound:
        return False
    except errors.ContainerdError:
        return True  # unsure: leave its network alone
    return True


def _release_quietly(plan: TaskNetPlan) -> None:
    try:
        release_network(plan)
    except Exception as exc:  # noqa: BLE001 - rollback: the start error is what matters
        log.warning("rollback: could not release the task's network", extra={"error": str(exc)})


def _delete_quietly(container: Container) -> None:
    try:
        container.delete(force=True)
    except errors.ContainerdError as exc:
        log.warning("rollback: could not delete container", extra={"container_id": container.id, "error": str(exc)})
