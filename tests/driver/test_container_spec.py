"""What the container gets: argv semantics, env, user, cwd, hostname, /etc files,
alloc dir and volume mounts, resources and labels."""

from __future__ import annotations

import os
import time

import pytest
from driverkit import Plugin, task_config

from nomad_ctr import Client
from nomad_ctr._pb import driver_pb2
from nomad_ctr.driver.state import decode_state

pytestmark = pytest.mark.driver


def run(plugin: Plugin, alloc, config: bytes, **extra) -> tuple[int, str, str]:
    a = alloc()
    task = a.task(config, **extra)
    plugin.start(task)
    code = plugin.wait(task.id).result.exit_code
    time.sleep(0.3)  # let the drain thread catch the last bytes
    return code, a.stdout.text(), a.stderr.text()


def test_argv_semantics(plugin: Plugin, alloc, images) -> None:
    # configured: ENTRYPOINT ["/bin/sh","-c"], CMD ["echo configured"]
    code, out, _ = run(plugin, alloc, task_config(image=images.configured))
    assert (code, out) == (0, "configured\n")
    # args alone replace CMD and follow the image ENTRYPOINT
    code, out, _ = run(plugin, alloc, task_config(image=images.configured, args=["echo from-args"]))
    assert out == "from-args\n"
    # command replaces everything: argv = [command, *args]
    code, out, _ = run(plugin, alloc, task_config(image=images.configured, command="echo", args=["a", "b"]))
    assert out == "a b\n"
    # entrypoint replaces ENTRYPOINT; the image CMD is dropped
    code, out, _ = run(plugin, alloc, task_config(image=images.configured, entrypoint=["echo", "ep"]))
    assert out == "ep\n"
    code, out, _ = run(plugin, alloc, task_config(image=images.configured, entrypoint=["echo"], command="x",
                                                  args=["y"]))
    assert out == "x y\n"


def test_env_user_cwd_and_image_defaults(plugin: Plugin, alloc, images) -> None:
    script = 'echo "$GREETING $FOO $(id -u):$(id -g) $(pwd)"'
    code, out, _ = run(plugin, alloc, task_config(image=images.configured, args=[script]),
                       env={"FOO": "bar"})
    assert code == 0
    assert out == "hello bar 1000:1000 /srv/app\n"
    _, out, _ = run(plugin, alloc, task_config(image=images.configured, args=[script], cwd="/tmp"),
                       env={"FOO": "baz"}, user="0:0")
    assert out == "hello baz 0:0 /tmp\n"


def test_alloc_dirs_mounted(plugin: Plugin, alloc, images) -> None:
    a = alloc()
    (a.alloc_dir / "web" / "local" / "in.txt").write_text("local-file\n")
    (a.alloc_dir / "web" / "secrets" / "s.txt").write_text("secret-file\n")
    script = "cat /local/in.txt /secrets/s.txt; echo shared > /alloc/data/out.txt"
    task = a.task(task_config(image=images.plain, command="sh", args=["-c", script]))
    plugin.start(task)
    assert plugin.wait(task.id).result.exit_code == 0
    a.stdout.wait_for("secret-file")
    assert "local-file" in a.stdout.text()
    assert (a.alloc_dir / "alloc" / "data" / "out.txt").read_text() == "shared\n"


def test_volume_and_config_mounts(plugin: Plugin, alloc, images, tmp_path) -> None:
    vol = tmp_path / "hostvol"
    vol.mkdir()
    (vol / "v.txt").write_text("volume\n")
    a = alloc()
    (a.alloc_dir / "web" / "local" / "conf").mkdir()
    (a.alloc_dir / "web" / "local" / "conf" / "c.txt").write_text("conf\n")
    config = task_config(
        image=images.plain, command="sh",
        args=["-c", ("cat /vol/v.txt /conf/c.txt; touch /vol/new 2>/dev/null || echo ro-ok; "
                     "df /scratch | grep -q tmpfs && echo tmpfs-ok")],
        mounts=[{"type": "bind", "source": "local/conf", "target": "/conf", "options": ["ro"]},
                {"type": "tmpfs", "target": "/scratch"}],
    )
    task = a.task(config, mounts=[driver_pb2.Mount(task_path="/vol", host_path=str(vol), readonly=True)])
    plugin.start(task)
    assert plugin.wait(task.id).result.exit_code == 0
    out = a.stdout.wait_for("tmpfs-ok")
    assert "volume\nconf\nro-ok\n" in out
    assert not (vol / "new").exists()


def test_hostname_hosts_and_dns(plugin: Plugin, alloc, images) -> None:
    script = "hostname; cat /etc/hosts; echo ---; cat /etc/resolv.conf"
    config = task_config(image=images.plain, command="sh", args=["-c", script],
                         extra_hosts=["db.internal:10.1.2.3"])
    task_dns = driver_pb2.DNSConfig(servers=["10.9.9.9"], searches=["svc.example"], options=["ndots:2"])
    code, out, _ = run(plugin, alloc, config, dns=task_dns)
    assert code == 0
    hostname = out.splitlines()[0]
    assert 0 < len(hostname) <= 63 and hostname.startswith("web-")
    hosts, _, resolv = out.partition("---")
    assert f"\t{hostname}" in hosts
    assert "10.1.2.3\tdb.internal" in hosts
    assert "nameserver 10.9.9.9" in resolv and "search svc.example" in resolv
    code, out, _ = run(plugin, alloc, task_config(image=images.plain, command="hostname", hostname="custom"))
    assert out == "custom\n"


def test_host_network(plugin: Plugin, alloc, images) -> None:
    code, out, _ = run(plugin, alloc, task_config(image=images.plain, command="sh", host_network=True,
                                                  args=["-c", "ls /sys/class/net; hostname"]))
    assert code == 0
    host_ifaces = set(os.listdir("/sys/class/net"))
    lines = out.split()
    assert set(lines[:-1]) == host_ifaces
    assert lines[-1] == os.uname().nodename


def test_own_netns_has_loopback_and_the_drivers_cni_interface(plugin: Plugin, alloc, images) -> None:
    # no group network, no host_network: the driver's own CNI network (tests/driver/test_network.py)
    _, out, _ = run(plugin, alloc, task_config(image=images.plain, command="ls", args=["/sys/class/net"]))
    assert out.split() == ["eth0", "lo"]


def test_resources_and_labels(plugin: Plugin, alloc, images, ns_client: Client) -> None:
    a = alloc()
    config = task_config(image=images.plain, command="sh", args=["-c", "echo ready; sleep 300"], pids_limit=50)
    task = a.task(config, memory_mb=96)
    task.resources.allocated_resources.memory.memory_max_mb = 128
    task.resources.linux_resources.cpu_shares = 300
    handle = plugin.start(task)
    a.stdout.wait_for("ready")
    cid = decode_state(handle.driver_state).container_id
    container = ns_client.containers.get(cid)
    stats = container.stats()
    assert stats.memory.limit == 128 << 20
    assert stats.pids.limit == 50
    labels = container.labels
    assert labels["com.hashicorp.nomad.alloc_id"] == a.alloc_id
    assert labels["com.hashicorp.nomad.task_name"] == "web"
    assert labels["com.hashicorp.nomad.task_id"] == task.id
    out = plugin.driver.ExecTask(driver_pb2.ExecTaskRequest(
        task_id=task.id, command=["cat", "/sys/fs/cgroup/cpu/cpu.shares"])).stdout
    if out:  # cgroup v1 layout
        assert out.strip() == b"300"
    plugin.destroy(task.id)


def test_isolation_options(plugin: Plugin, alloc, images) -> None:
    script = ("touch /x 2>/dev/null && echo rw || echo ro; "
              "cat /proc/sys/net/core/somaxconn; "
              "df -k /dev/shm | tail -1 | awk '{print $2}'; "
              "grep CapEff /proc/self/status; "
              "grep Seccomp: /proc/self/status")
    config = task_config(image=images.plain, command="sh", args=["-c", script], readonly_rootfs=True,
                         sysctl=[{"net.core.somaxconn": "1234"}], shm_size="8m", cap_drop=["ALL"])
    code, out, _ = run(plugin, alloc, config)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "ro"
    assert lines[1] == "1234"
    assert lines[2] == "8192"
    assert lines[3].split()[1] == "0000000000000000"
    assert lines[4].split()[1] == "2"  # seccomp filter on by default


def test_pid_mode_host(plugin: Plugin, alloc, images) -> None:
    _, out, _ = run(plugin, alloc, task_config(image=images.plain, command="sh", pid_mode="host",
                                               args=["-c", "test -d /proc/1 && cat /proc/1/comm"]))
    with open("/proc/1/comm") as f:
        assert out.strip() == f.read().strip()


def test_path_from_the_task_env_wins(plugin: Plugin, alloc, images) -> None:
    # the reference driver dropped a PATH given in env; here it replaces the image's
    config = task_config(image=images.plain, command="sh", args=["-c", 'echo "$PATH"'])
    code, out, _ = run(plugin, alloc, config, env={"PATH": "/opt/tools/bin:/bin"})
    assert (code, out) == (0, "/opt/tools/bin:/bin\n")


def test_device_plugin_devices_at_their_task_path_and_permissions(plugin: Plugin, alloc, images) -> None:
    # TaskConfig.devices, as Nomad's device plugins hand them over: host path, task path,
    # cgroup rights ("r": opening it for writing is refused by the devices cgroup)
    script = ("[ -b /dev/accel0 ] && echo block-ok; "
              "dd if=/dev/accel0 of=/dev/null bs=512 count=1 2>/dev/null && echo read-ok; "
              "dd if=/dev/zero of=/dev/accel0 bs=512 count=1 2>&1 | grep -o 'Operation not permitted'")
    config = task_config(image=images.plain, command="sh", args=["-c", script])
    code, out, _ = run(plugin, alloc, config, devices=[
        driver_pb2.Device(host_path="/dev/loop0", task_path="/dev/accel0", cgroup_permissions="r")])
    assert (code, out.splitlines()) == (0, ["block-ok", "read-ok", "Operation not permitted"])


def test_volume_mount_propagation_host_to_task(plugin: Plugin, alloc, images, tmp_path) -> None:
    import subprocess

    vol = tmp_path / "shared-vol"
    (vol / "sub").mkdir(parents=True)
    # make the source a shared mount, so mounts under it have somewhere to propagate from
    subprocess.run(["mount", "--bind", str(vol), str(vol)], check=True)
    subprocess.run(["mount", "--make-shared", str(vol)], check=True)
    mounted: list[str] = [str(vol)]
    try:
        a = alloc()
        script = ("echo ready; for i in $(seq 300); do [ -f /vol/sub/marker ] && { cat /vol/sub/marker; exit 0; }; "
                  "sleep 0.1; done; echo not-seen; exit 1")
        config = task_config(image=images.plain, command="sh", args=["-c", script])
        task = a.task(config, mounts=[driver_pb2.Mount(task_path="/vol", host_path=str(vol),
                                                       propagation_mode="host-to-task")])
        plugin.start(task)
        a.stdout.wait_for("ready")
        # a mount made on the host after the task started reaches it (rslave)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(vol / "sub")], check=True)
        mounted.insert(0, str(vol / "sub"))
        (vol / "sub" / "marker").write_text("from-a-later-host-mount\n")
        assert plugin.wait(task.id).result.exit_code == 0
        assert "from-a-later-host-mount" in a.stdout.wait_for("from-a-later-host-mount")
    finally:
        for path in mounted:
            subprocess.run(["umount", "-l", path], check=False)
