"""localrun: a Python stand-in for the Nomad client side of a task driver plugin.

It launches the plugin executable as Nomad does, plays the start sequence over our
generated stubs, decodes job and agent files with the plugin's own hclspec into cty
msgpack (hcldec-lite), builds a real alloc dir with log FIFOs drained like logmon,
and drives StartTask / WaitTask / StopTask / DestroyTask.

    from nomad_ctr.localrun import LocalPlugin, load_job

    with LocalPlugin.launch(agent_config="example/agent.hcl") as plugin:
        with plugin.start_task(load_job("example/hello.nomad"), alloc_dir="/tmp/a") as run:
            print(run.wait(timeout=30))

`nomad-ctr run-job` is built on it, and tests use it as the Nomad client.
"""

import logging

from nomad_ctr.localrun.allocdir import LogMon, TaskPaths, build_alloc_dir
from nomad_ctr.localrun.hcldec import Decoded, HclDecodeError, decode_body
from nomad_ctr.localrun.hclfile import HclError, evaluate_body, parse_file, parse_text
from nomad_ctr.localrun.jobfile import (
    AgentConfig,
    JobTask,
    PluginBlock,
    load_agent,
    load_job,
    parse_agent,
    parse_job,
)
from nomad_ctr.localrun.plugin import DriverError, ExitResult, LocalPlugin, TaskRun
from nomad_ctr.localrun.process import PluginProcess, PluginStartError, parse_handshake
from nomad_ctr.localrun.taskenv import Allocation, new_allocation

# a library: the plugin's log lines go where the application routes them, not to stderr
logging.getLogger("nomad_ctr.localrun").addHandler(logging.NullHandler())

__all__ = [
    "AgentConfig",
    "Allocation",
    "Decoded",
    "DriverError",
    "ExitResult",
    "HclDecodeError",
    "HclError",
    "JobTask",
    "LocalPlugin",
    "LogMon",
    "PluginBlock",
    "PluginProcess",
    "PluginStartError",
    "TaskPaths",
    "TaskRun",
    "build_alloc_dir",
    "decode_body",
    "evaluate_body",
    "load_agent",
    "load_job",
    "new_allocation",
    "parse_agent",
    "parse_file",
    "parse_handshake",
    "parse_job",
    "parse_text",
]
