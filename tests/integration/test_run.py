"""containers.run and the process config: exit codes, output files, image config, overrides."""

from __future__ import annotations

import concurrent.futures

import pytest

from nomad_ctr import Client, ContainerSpec, TaskState, errors

pytestmark = pytest.mark.integration


def test_run_exit_code_and_output(client: Client, plain: str) -> None:
    result = client.containers.run(plain, ["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=60)
    assert result.exit_code == 3
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    assert not result.oom_killed
    with pytest.raises(errors.ContainerNotFound):
        client.containers.get(result.container_id)


def test_run_keep(client: Client, plain: str, cid: str) -> None:
    result = client.containers.run(plain, ["true"], id=cid, remove=False, timeout=60)
    assert result.exit_code == 0 and result.container_id == cid
    c = client.containers.get(cid)
    assert c.status().state is TaskState.STOPPED
    c.delete()
    with pytest.raises(errors.ContainerNotFound):
        c.info()


def test_output_lands_in_log_files(client: Client, plain: str, cid: str) -> None:
    with client.containers.create(cid, plain, spec=ContainerSpec(
            args=["sh", "-c", "echo to-stdout; echo to-stderr >&2"])) as c:
        pid = c.start()
        assert pid > 0
        assert c.wait(timeout=60).exit_code == 0
        files = c.log_files
        assert str(files.directory) == str(client.state_dir / "logs" / client.namespace / cid)
        assert (files.directory / "stdout").read_bytes() == b"to-stdout\n"
        assert (files.directory / "stderr").read_bytes() == b"to-stderr\n"
        assert c.logs() == b"to-stdout\n" and c.logs("stderr") == b"to-stderr\n"
    assert not files.directory.exists(), "delete() must remove the API-kept logs"


def test_output_to_explicit_paths(client: Client, plain: str, cid: str, tmp_path) -> None:
    out, err = tmp_path / "o.log", tmp_path / "e.log"
    with client.containers.create(cid, plain, spec=ContainerSpec(
            args=["sh", "-c", "echo a; echo b >&2"])) as c:
        c.start(stdout=str(out), stderr=str(err))
        c.wait(timeout=60)
        assert out.read_bytes() == b"a\n" and err.read_bytes() == b"b\n"
        with pytest.raises(errors.FailedPrecondition):
            c.logs()


def test_configured_image_defaults(client: Client, configured: str) -> None:
    # ENTRYPOINT ["/bin/sh","-c"], CMD ["echo configured"]
    assert client.containers.run(configured, timeout=60).stdout == b"configured\n"
    # command replaces CMD; env, cwd and user come from the image
    spec = ContainerSpec(command=['echo "$GREETING"; pwd; id -u; id -g'])
    result = client.containers.run(configured, spec=spec, timeout=60)
    assert result.stdout.decode().split() == ["hello", "/srv/app", "1000", "1000"], result


def test_spec_overrides_image_config(client: Client, configured: str) -> None:
    spec = ContainerSpec(
        command=['echo "$GREETING $EXTRA"; pwd; id -u; hostname'],
        env={"GREETING": "bonjour", "EXTRA": "x y"},
        cwd="/tmp",
        user="0:0",
        hostname="api-test",
    )
    result = client.containers.run(configured, spec=spec, timeout=60)
    assert result.stdout.decode().splitlines() == ["bonjour x y", "/tmp", "0", "api-test"], result


def test_run_args_override_entrypoint(client: Client, configured: str) -> None:
    result = client.containers.run(configured, ["/bin/echo", "direct"], timeout=60)
    assert result.stdout == b"direct\n"


def test_run_pulls_missing_image(client: Client, images) -> None:
    if client.images.exists(images.hello):
        client.images.remove(images.hello, sync=True)
    result = client.containers.run(images.hello, ["true"], timeout=120)
    assert result.exit_code == 0
    assert client.images.exists(images.hello)


def test_run_timeout_kills_and_removes(client: Client, plain: str, cid: str) -> None:
    with pytest.raises(errors.Timeout):
        client.containers.run(plain, ["sleep", "600"], id=cid, timeout=2)
    with pytest.raises(errors.ContainerNotFound):
        client.containers.get(cid)


def test_concurrent_runs_from_threads(client: Client, plain: str) -> None:
    def one(n: int):
        return client.containers.run(plain, ["sh", "-c", f"echo run-{n}; exit {n}"], timeout=120)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(8)))
    assert [r.exit_code for r in results] == list(range(8))
    assert [r.stdout for r in results] == [f"run-{n}\n".encode() for n in range(8)]
    assert len({r.container_id for r in results}) == 8
    left = {c.id for c in client.containers.list()}
    assert not left & {r.container_id for r in results}


def test_create_errors(client: Client, plain: str, stack, cid: str) -> None:
    with client.containers.create(cid, plain, spec=ContainerSpec(args=["true"])):
        with pytest.raises(errors.AlreadyExists):
            client.containers.create(cid, plain, spec=ContainerSpec(args=["true"]))
    with pytest.raises(errors.ImageNotFound):
        client.containers.create(cid + "-x", f"{stack.registry}/nomad-ctr/not-pulled:latest")
    with pytest.raises(errors.ContainerNotFound):
        client.containers.get("no-such-container")
    with pytest.raises(errors.InvalidArgument, match="^id="):
        client.containers.create("bad id", plain)


def test_list_by_labels_and_namespaces(client: Client, plain: str, cid: str) -> None:
    spec = ContainerSpec(args=["true"])
    with client.containers.create(cid, plain, spec=spec, labels={"suite": "api", "n": "1"}) as c:
        assert c.labels == {"suite": "api", "n": "1"}
        assert [x.id for x in client.containers.list(labels={"suite": "api"})] == [cid]
        assert client.containers.list(labels={"suite": "other"}) == []
        other = client.with_namespace(client.namespace + "-other")
        assert cid not in [x.id for x in other.containers.list()]
        with pytest.raises(errors.ContainerNotFound):
            other.containers.get(cid)
        assert c.image == plain
