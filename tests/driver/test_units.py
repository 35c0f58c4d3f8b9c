"""Pure logic of the driver: ids, driver_state, spec building, stats math, exit results."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from driverkit import driver_config, task_config

from nomad_ctr import Metrics
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.config import ConfigError, parse_driver_config, parse_task_config
from nomad_ctr.driver.handle import ExitInfo, TaskHandle, signal_of
from nomad_ctr.driver.specbuild import NetPlan, build_spec, container_id_for
from nomad_ctr.driver.state import (
    DriverState,
    StateError,
    TaskStore,
    decode_state,
    encode_state,
)
from nomad_ctr.driver.stats import CpuSampler, memory

pytestmark = pytest.mark.unit

ID_RE = re.compile(r"^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$")
DRIVER = parse_driver_config(driver_config())


@pytest.mark.parametrize("alloc_id,name", [
    ("5b1c2f9e-0000-4000-8000-123456789abc", "web"),
    ("x" * 80, "é-日本-" * 20), ("--", "__"), ("a", "b c/d"), ("", "."),
])
def test_container_ids_valid_and_deterministic(alloc_id: str, name: str) -> None:
    cid = container_id_for(alloc_id, name)
    assert ID_RE.match(cid) and len(cid) <= 76, cid
    assert container_id_for(alloc_id, name) == cid
    assert container_id_for(alloc_id, name + "x") != cid


def test_driver_state_round_trip_and_rejects() -> None:
    state = DriverState("a/b/c", "cid", "ns", alloc_id="a", task_name="b", started_at_ns=123,
                        stdout_path="/x", etc_dir="/e")
    assert decode_state(encode_state(state)) == state
    import msgpack

    for blob in (b"", b"\xc1", msgpack.packb([1]), msgpack.packb({"version": 2}),
                 msgpack.packb({"version": 1, "task_id": "t", "container_id": 5, "namespace": "n"}),
                 msgpack.packb({"version": 1, "task_id": "t", "namespace": "n"})):
        with pytest.raises(StateError):
            decode_state(blob)


def test_store_reserve_and_index() -> None:
    store = TaskStore()
    assert store.reserve("t1") and not store.reserve("t1")
    store.release("t1")
    assert store.reserve("t1")
    handle = TaskHandle(DriverState("t1", "c1", "ns"), container=None)  # type: ignore[arg-type]
    assert store.add(handle) and not store.add(handle)
    assert store.by_container("c1") == [handle]
    assert store.remove("t1") is handle and store.get("t1") is None


def _task(**fields) -> driver_pb2.TaskConfig:
    t = driver_pb2.TaskConfig(id="a/web/1", name="web", alloc_id="a" * 36, **fields)
    return t


def _spec(config: bytes, task: driver_pb2.TaskConfig | None = None):
    return build_spec(task or _task(), parse_task_config(config), DRIVER, NetPlan())


def test_argv_mapping() -> None:
    s = _spec(task_config(image="x", command="run", args=["-v"]))
    assert (s.args, s.entrypoint, s.command) == (("run", "-v"), None, None)
    s = _spec(task_config(image="x", args=["-v"]))
    assert (s.args, s.entrypoint, s.command) == (None, None, ("-v",))
    s = _spec(task_config(image="x", entrypoint=["/ep"], args=["-v"]))
    assert (s.args, s.entrypoint, s.command) == (None, ("/ep",), ("-v",))
    s = _spec(task_config(image="x", entrypoint=["/ep"]))
    assert s.command == ()  # image CMD dropped
    s = _spec(task_config(image="x"))
    assert (s.args, s.entrypoint, s.command) == (None, None, None)


def _resources(memory_mb: int, memory_max_mb: int = 0, shares: int = 100) -> driver_pb2.Resources:
    return driver_pb2.Resources(
        allocated_resources=driver_pb2.AllocatedTaskResources(
            memory=driver_pb2.AllocatedMemoryResources(memory_mb=memory_mb, memory_max_mb=memory_max_mb)),
        linux_resources=driver_pb2.LinuxResources(cpu_shares=shares, cpuset_cpus="0"),
    )


@pytest.mark.parametrize("mb,max_mb,limit,reservation", [
    (64, 0, 64 << 20, 64 << 20),
    (64, 256, 256 << 20, 64 << 20),
    (64, -1, None, 64 << 20),
    (0, 0, None, None),
])
def test_memory_limits(mb: int, max_mb: int, limit, reservation) -> None:
    s = _spec(task_config(image="x"), _task(resources=_resources(mb, max_mb)))
    assert (s.memory_limit, s.memory_reservation) == (limit, reservation)
    assert s.cpu_shares == 100 and s.cpuset_cpus == "0"


def test_bad_user_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        _spec(task_config(image="x"), _task(user="bad user!"))
    assert "user" in str(exc.value)


def _metrics(total: int, user: int, system: int) -> Metrics:
    return Metrics.from_json({"cgroup": "v1", "cpu": {"total_ns": total, "user_ns": user, "system_ns": system,
                                                    "throttled_periods": 1, "throttled_time_ns": 2},
                              "memory": {"rss": 10, "usage": 20, "cache": 5}})


def test_cpu_percent_from_deltas() -> None:
    sampler = CpuSampler()
    first = sampler.cpu(_metrics(0, 0, 0), now=100.0)
    assert driver_pb2.CPUUsage.PERCENT not in first.measured_fields
    assert driver_pb2.CPUUsage.THROTTLED_PERIODS in first.measured_fields
    second = sampler.cpu(_metrics(500_000_000, 400_000_000, 100_000_000), now=101.0)
    assert second.percent == pytest.approx(50.0)
    assert second.user_mode == pytest.approx(40.0) and second.system_mode == pytest.approx(10.0)
    assert second.total_ticks > 0
    mem = memory(_metrics(0, 0, 0))
    assert set(mem.measured_fields) == {driver_pb2.MemoryUsage.RSS, driver_pb2.MemoryUsage.CACHE,
                                        driver_pb2.MemoryUsage.USAGE}
    assert (mem.rss, mem.usage, mem.cache, mem.swap) == (10, 20, 5, 0)


def test_exit_results() -> None:
    assert signal_of(137) == 9 and signal_of(143) == 15 and signal_of(1) == 0
    h = TaskHandle(DriverState("t", "c", "n"), container=None)  # type: ignore[arg-type]
    h.on_exit(3, datetime.now(timezone.utc))
    h.on_exit(4, None)  # first one wins
    assert h.result == ExitInfo(exit_code=3)


def test_137_with_a_read_oom_counter_decides_at_once() -> None:
    plain = TaskHandle(DriverState("t", "c", "n"), container=None)  # type: ignore[arg-type]
    plain.on_exit(137, None, oom_counter=False)
    assert plain.exited.is_set() and plain.result == ExitInfo(exit_code=137, signal=9, oom_killed=False)
    oom = TaskHandle(DriverState("t2", "c", "n"), container=None)  # type: ignore[arg-type]
    oom.on_exit(137, None, oom_counter=True)
    assert oom.exited.is_set() and oom.result == ExitInfo(exit_code=137, signal=9, oom_killed=True)


def test_137_with_an_unreadable_counter_waits_for_a_late_oom_event() -> None:
    h = TaskHandle(DriverState("t", "c", "n"), container=None)  # type: ignore[arg-type]
    h.on_exit(137, None)  # counter unknown
    assert not h.exited.is_set()
    h.on_oom()
    assert h.exited.is_set() and h.result == ExitInfo(exit_code=137, signal=9, oom_killed=True)
    plain = TaskHandle(DriverState("t2", "c", "n"), container=None)  # type: ignore[arg-type]
    plain.on_exit(137, None)
    assert plain.wait(5.0) == ExitInfo(exit_code=137, signal=9, oom_killed=False)


def test_netplan_files_and_symlink_safety(tmp_path) -> None:
    from nomad_ctr.driver.netplan import ETC_DIR_NAME, plan_network, remove_etc_dir

    alloc_dir = tmp_path / "alloc"
    (alloc_dir / "web").mkdir(parents=True)
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "hosts").write_text("precious\n")
    # a planted symlink where the driver writes its files is replaced, never followed
    (alloc_dir / "web" / ETC_DIR_NAME).symlink_to(canary)
    task = driver_pb2.TaskConfig(id="a/web/1", name="web", alloc_id="a" * 36, alloc_dir=str(alloc_dir),
                                 dns=driver_pb2.DNSConfig(servers=["10.0.0.2"]))
    tc = parse_task_config(task_config(image="x", extra_hosts=["db:10.1.1.1"], hostname="box"))
    plan = plan_network(task, tc, "cid")
    assert (canary / "hosts").read_text() == "precious\n"
    etc = alloc_dir / "web" / ETC_DIR_NAME
    assert not etc.is_symlink() and etc.is_dir()
    mounts = {dst: Path(src) for src, dst in plan.etc_mounts}
    assert set(mounts) == {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
    hosts = mounts["/etc/hosts"].read_text()
    assert "\tbox" in hosts and "10.1.1.1\tdb" in hosts
    assert "nameserver 10.0.0.2" in mounts["/etc/resolv.conf"].read_text()
    assert plan.netns_path is None and not plan.host_network
    remove_etc_dir(plan.etc_dir)
    assert not etc.exists() and canary.exists()


def test_netplan_host_and_group(tmp_path) -> None:
    from nomad_ctr.driver.netplan import HOST_ETC_MOUNTS, plan_network

    task = driver_pb2.TaskConfig(id="a/web/1", name="web", alloc_id="a" * 36, alloc_dir=str(tmp_path))
    host = plan_network(task, parse_task_config(task_config(image="x", host_network=True)), "cid")
    assert host.host_network and host.etc_mounts == HOST_ETC_MOUNTS and host.etc_dir == ""
    spec = driver_pb2.NetworkIsolationSpec(mode=driver_pb2.NetworkIsolationSpec.GROUP, path="/var/run/netns/x",
                                           hostsConfig=driver_pb2.HostsConfig(hostname="grp", address="10.2.3.4"))
    task.network_isolation_spec.CopyFrom(spec)
    group = plan_network(task, parse_task_config(task_config(image="x", host_dns=False)), "cid")
    assert group.netns_path == "/var/run/netns/x" and group.hostname == "grp"
    assert "/etc/resolv.conf" not in {dst for _, dst in group.etc_mounts}
    hosts = Path({d: s for s, d in group.etc_mounts}["/etc/hosts"]).read_text()
    assert "10.2.3.4\tgrp" in hosts


def test_pull_progress_events_wait_for_the_manifest() -> None:
    from nomad_ctr import types
    from nomad_ctr.driver.taskrunner import _ProgressEvents

    sent: list[str] = []
    events = _ProgressEvents(sent.append)
    ref = "127.0.0.1:5000/x:latest"
    events(types.PullProgress(ref, (), False))  # manifest not read yet: nothing to say
    assert sent == []
    layer = types.LayerProgress("sha256:aa", types.LayerStatus.DOWNLOADING, 1 << 20, 4 << 20)
    events(types.PullProgress(ref, (layer,), False))
    assert sent == [f"Pulling image {ref}: 0/1 layers, 1.0 of 4.0 MiB"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read (No such file or directory)"),
        (b"x" * ((1 << 20) + 1), "is larger than 1 MiB"),
        (b"[1, 2]", "is not a JSON seccomp profile (want an object)"),
        (b"{not json", "is not a JSON seccomp profile"),
        (b'{"defaultAction": "SCMP_ACT_ALLOW"}', None),
    ],
)
def test_seccomp_profile_checked_when_the_spec_is_built(
    tmp_path: Path, content: bytes | None, message: str | None
) -> None:
    profile = tmp_path / "profile.json"
    if content is not None:
        profile.write_bytes(content)
    task = driver_pb2.TaskConfig(id="a/web/1", name="web", alloc_id="a" * 36, alloc_dir=str(tmp_path))
    tc = parse_task_config(task_config(image="x", seccomp_profile=str(profile)))
    if message is None:
        assert build_spec(task, tc, DRIVER, NetPlan()).seccomp_profile == str(profile)
        return
    with pytest.raises(ConfigError) as err:
        build_spec(task, tc, DRIVER, NetPlan())
    assert str(err.value) == f'invalid task config: seccomp_profile: "{profile}" {message}'


def test_generated_etc_mount_clash_names_the_jobs_mount(tmp_path: Path) -> None:
    task = driver_pb2.TaskConfig(id="a/web/1", name="web", alloc_id="a" * 36, alloc_dir=str(tmp_path))
    tc = parse_task_config(task_config(image="x", mounts=[{"type": "tmpfs", "target": "/etc/hosts"}]))
    build_spec(task, tc, DRIVER, NetPlan())  # the dry run has no /etc files yet
    net = NetPlan(etc_mounts=((str(tmp_path / "hosts"), "/etc/hosts"),))
    with pytest.raises(ConfigError) as err:
        build_spec(task, tc, DRIVER, net)
    assert str(err.value).startswith(
        'invalid task config: mounts[0].target: "/etc/hosts" is already mounted by a path the driver mounts'
    )


def test_cgroup_paths_v1_and_v2() -> None:
    import cgroups

    v1 = "12:pids:/nomad/x\n4:cpu,cpuacct:/nomad/x\n3:memory:/nomad/x\n0::/\n"
    assert cgroups.dir_from(v1, "cpu", v2=False) == Path("/sys/fs/cgroup/cpu/nomad/x")
    assert cgroups.dir_from(v1, "memory", v2=False) == Path("/sys/fs/cgroup/memory/nomad/x")
    v2 = "0::/nomad.slice/x.scope\n"
    assert cgroups.dir_from(v2, "memory", v2=True) == Path("/sys/fs/cgroup/nomad.slice/x.scope")
    with pytest.raises(AssertionError):
        cgroups.dir_from(v2, "memory", v2=False)
    assert cgroups.cpu_weight_for_shares(1024) == 39  # runc: 1 + (1022 * 9999) // 262142
    assert cgroups.cpu_weight_for_shares(2) == 1 and cgroups.cpu_weight_for_shares(262144) == 10000
