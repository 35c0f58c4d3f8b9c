"""Task options proven inside real containers (what test_container_spec.py does not
cover yet): cwd created, capabilities decoded from /proc/1/status, privileged (whole
bounding set against the host's cap_last_cap, host devices), devices, pids_limit
enforced, a seccomp profile file, mount types and fstab options, the default hostname
of a long task name, host_dns."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from driverkit import Plugin, task_config

from nomad_ctr.driver.config_values import CAPABILITIES

pytestmark = pytest.mark.driver

# containerd's default set for a non-privileged container (oci.WithDefaultSpec)
_DEFAULT = ("CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP "
            "NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE")
DEFAULT_CAPS = frozenset("CAP_" + c for c in _DEFAULT.split())
# capability number -> name, from linux/capability.h
_BY_NUMBER = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
    "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME "
    "SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG "
    "WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE"
)
CAP_NUMBERS = _BY_NUMBER.split()


def decode_caps(mask: str) -> set[str]:
    bits = int(mask, 16)
    return {f"CAP_{name}" for i, name in enumerate(CAP_NUMBERS) if bits >> i & 1}


def status_caps(text: str, field: str) -> set[str]:
    m = re.search(rf"^{field}:\s*([0-9a-f]+)$", text, re.MULTILINE)
    assert m, text
    return decode_caps(m.group(1))


def host_last_cap() -> int:
    return int(Path("/proc/sys/kernel/cap_last_cap").read_text())


def runtime_bounding_set() -> int:
    """containerd's own bounding set: what a privileged container can get at most."""
    pid = Path("/run/nomad-ctr-test/containerd.pid")
    status = Path(f"/proc/{pid.read_text().strip()}/status" if pid.exists() else "/proc/self/status").read_text()
    return int(re.search(r"^CapBnd:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)  # type: ignore[union-attr]


def run(plugin: Plugin, alloc, config: bytes, task_name: str = "web", **extra) -> tuple[int, str, str]:
    a = alloc(task_name)
    task = a.task(config, **extra)
    plugin.start(task)
    code = plugin.wait(task.id).result.exit_code
    time.sleep(0.3)  # let the drain thread catch the last bytes
    return code, a.stdout.text(), a.stderr.text()


def sh(images, script: str, **options) -> bytes:
    return task_config(image=images.plain, command="sh", args=["-c", script], **options)


def test_cwd_is_created_when_missing(plugin: Plugin, alloc, images) -> None:
    code, out, err = run(plugin, alloc, sh(images, "pwd; touch here && echo writable", cwd="/srv/new/deeper"))
    assert (code, out) == (0, "/srv/new/deeper\nwritable\n"), err


def test_cap_add_and_cap_drop_in_proc_1_status(plugin: Plugin, alloc, images) -> None:
    code, out, _ = run(plugin, alloc, sh(images, "cat /proc/1/status", cap_add=["net_admin", "CAP_SYS_TIME"],
                                         cap_drop=["chown", "NET_RAW"]))
    assert code == 0
    want = (DEFAULT_CAPS | {"CAP_NET_ADMIN", "CAP_SYS_TIME"}) - {"CAP_CHOWN", "CAP_NET_RAW"}
    assert status_caps(out, "CapBnd") == want
    assert status_caps(out, "CapEff") == want  # root in the container: effective = bounding


def test_default_caps_without_options(plugin: Plugin, alloc, images) -> None:
    _, out, _ = run(plugin, alloc, sh(images, "cat /proc/1/status"))
    assert status_caps(out, "CapBnd") == DEFAULT_CAPS


def test_privileged_has_every_capability_and_host_devices(plugin: Plugin, alloc, images) -> None:
    script = "cat /proc/1/status; echo ---; ls /dev"
    code, out, _ = run(plugin, alloc, sh(images, script, privileged=True))
    assert code == 0
    status, _, devs = out.partition("---")
    bnd = int(re.search(r"^CapBnd:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)  # type: ignore[union-attr]
    # every capability the kernel knows (cap_last_cap) that the runtime itself holds (a
    # sandboxed host may lack some, e.g. CAP_SYS_RESOURCE), the highest one included
    assert bnd == ((1 << (host_last_cap() + 1)) - 1) & runtime_bounding_set()
    assert bnd >> host_last_cap() == 1
    assert "Seccomp:\t0" in status  # privileged runs unconfined
    host_devs = {p.name for p in Path("/dev").iterdir() if p.is_char_device() or p.is_block_device()}
    assert "loop0" in host_devs
    assert "loop0" in devs.split()
    # without privileged the host's loop devices are not there
    _, out, _ = run(plugin, alloc, sh(images, "ls /dev"))
    assert "loop0" not in out.split()


def test_devices_option_gives_only_the_listed_device(plugin: Plugin, alloc, images) -> None:
    script = "ls /dev; echo ---; dd if=/dev/loop0 of=/dev/null bs=512 count=1 2>&1 && echo readable"
    code, out, _ = run(plugin, alloc, sh(images, script, devices=["/dev/loop0"]))
    assert code == 0
    listing, _, rest = out.partition("---")
    assert "loop0" in listing.split() and "loop1" not in listing.split()
    assert "readable" in rest  # the device cgroup allows it, not only the node exists


def test_pids_limit_is_enforced(plugin: Plugin, alloc, images) -> None:
    # start up to 40 sleepers under a limit of 10 tasks; ash exits 2 ("can't fork") when
    # a fork fails. PID 1's exit takes the sleepers with it.
    script = ("i=0; while [ $i -lt 40 ]; do sleep 30 & i=$((i+1)); echo started=$i; done; exit 0")
    code, out, err = run(plugin, alloc, sh(images, script, pids_limit=10))
    started = [int(x) for x in re.findall(r"started=(\d+)", out)]
    assert code == 2 and "can't fork" in err, (code, out, err)
    assert 0 < max(started) < 10
    # the same script without the limit starts all of its sleepers
    code, out, _ = run(plugin, alloc, sh(images, script))
    assert code == 0 and "started=40" in out


def test_seccomp_profile_file_is_applied(plugin: Plugin, alloc, images, tmp_path: Path) -> None:
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }))
    script = "grep ^Seccomp: /proc/1/status; mkdir /tmp/d 2>&1 || echo mkdir-refused; touch /tmp/f && echo touch-ok"
    code, out, _ = run(plugin, alloc, sh(images, script, seccomp_profile=str(profile)))
    assert code == 0
    assert "Seccomp:\t2" in out
    assert "Operation not permitted" in out and "mkdir-refused" in out
    assert "touch-ok" in out
    # seccomp = false: no filter at all
    _, out, _ = run(plugin, alloc, sh(images, "grep ^Seccomp: /proc/1/status", seccomp=False))
    assert out == "Seccomp:\t0\n"


def test_mount_types_and_options(plugin: Plugin, alloc, images, tmp_path: Path) -> None:
    host = tmp_path / "vol"
    host.mkdir()
    (host / "in.txt").write_text("from-host\n")
    host.chmod(0o777)
    script = ("cat /data/in.txt; echo written > /data/out.txt; "
              "df -k /scratch | tail -1 | awk '{print \"size=\" $2}'; stat -c mode=%a /scratch; "
              "cp /bin/busybox /scratch/bb; /scratch/bb true 2>/dev/null && echo exec-ok || echo noexec-ok; "
              "grep ' /data ' /proc/mounts | grep -q nosuid && echo nosuid-ok")
    config = sh(images, script, mounts=[
        {"target": "/data", "source": str(host), "options": ["rw", "nosuid"]},  # type defaults to volume
        {"type": "tmpfs", "target": "/scratch", "options": ["size=2m", "mode=1777", "noexec"]},
    ])
    code, out, err = run(plugin, alloc, config)
    assert code == 0, err
    assert out.splitlines() == ["from-host", "size=2048", "mode=1777", "noexec-ok", "nosuid-ok"]
    assert (host / "out.txt").read_text() == "written\n"


def test_default_hostname_of_a_long_task_name_is_valid(plugin: Plugin, alloc, images) -> None:
    name = "a-very-long-task-name-that-goes-on-and-on-well-past-sixty-three-characters"
    code, out, _ = run(plugin, alloc, sh(images, "hostname"), task_name=name)
    host = out.strip()
    assert code == 0 and 0 < len(host) <= 63
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", host), host


def test_host_dns(plugin: Plugin, alloc, images) -> None:
    host_servers = [ln.split()[1] for ln in Path("/etc/resolv.conf").read_text().splitlines()
                    if ln.startswith("nameserver") and not ln.split()[1].startswith("127.")]
    script = "grep ^nameserver /etc/resolv.conf; grep ' /etc/resolv.conf ' /proc/mounts | grep -q ro, && echo ro"
    _, out, _ = run(plugin, alloc, sh(images, script))
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("nameserver")] == host_servers
    assert out.splitlines()[-1] == "ro"
    # host_dns = false: nothing mounted over the image's /etc/resolv.conf
    _, out, _ = run(plugin, alloc, sh(images, "grep -c ' /etc/resolv.conf ' /proc/mounts", host_dns=False))
    assert out.strip() == "0"


def test_capability_table_matches_config_values() -> None:
    assert {f"CAP_{n}" for n in CAP_NUMBERS} == set(CAPABILITIES)
