"""TaskEvents carries pull progress of a real StartTask between "Pulling image" and
"Pulled image".

The pull runs against a containerd of its own with an empty root: the test stack's
containerd shares content between namespaces (content_sharing_policy "shared" by
default), so a fresh namespace there would find every layer already present and
download nothing. Here all ~50 MB of the multi-layer image come over the wire.
"""

from __future__ import annotations

import re

import pytest
from driverkit import Plugin, task_config, task_events
from test_containerd_restart import Daemon, daemon, own_plugin  # noqa: F401 - fixtures reused

from nomad_ctr import Client

pytestmark = pytest.mark.driver

PROGRESS = re.compile(r"^Pulling image (\S+): (\d+)/(\d+) layers, ([\d.]+) of ([\d.]+) MiB$")


def test_start_task_reports_pull_progress(daemon: Daemon, own_plugin: Plugin, alloc, images) -> None:  # noqa: F811
    with Client(address=daemon.address, namespace="drv", timeout=10) as c:
        assert c.images.list() == []  # nothing cached: the pull below downloads

    events = task_events(own_plugin)

    a = alloc()
    task = a.task(task_config(image=images.big, command="true"))
    own_plugin.start(task)
    assert own_plugin.wait(task.id, timeout=60).result.exit_code == 0
    events.close()

    mine = [e for e in events.received() if e.task_id == task.id]
    messages = [e.message for e in mine]
    ref = images.big
    assert f"Pulling image {ref}" in messages, messages
    assert f"Pulled image {ref}" in messages, messages
    start, end = messages.index(f"Pulling image {ref}"), messages.index(f"Pulled image {ref}")
    assert start < end, messages
    progress = [PROGRESS.match(m) for m in messages[start + 1:end]]
    assert progress and all(progress), messages  # at least one, and nothing else in between
    for m in progress:
        assert m is not None
        assert m.group(1) == ref
        done, layers = int(m.group(2)), int(m.group(3))
        assert layers >= 2 and 0 <= done <= layers  # a multi-layer image, counted as such
        assert float(m.group(5)) >= 40.0  # the layers' full size is known from the manifest
    for e in mine:
        assert (e.alloc_id, e.task_name) == (task.alloc_id, task.name)
        assert e.annotations["image"] == ref

