"""Argument parsing and the one place errors become a single line and an exit status:
0 ok, 1 runtime error, 2 usage error, 130 interrupted; `run`, `exec` and `run-job`
exit with the task's own code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

__all__ = ["CliError", "build_parser", "main"]

PROG = "nomad-ctr"


class CliError(Exception):
    """A problem to report as one line (exit status `code`)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="containerd from Python, and Nomad jobs run locally."
    )
    p.add_argument(
        "--address",
        default=os.environ.get("CONTAINERD_ADDRESS"),
        help="containerd socket (env CONTAINERD_ADDRESS; default /run/containerd/containerd.sock)",
    )
    p.add_argument(
        "--namespace",
        default=os.environ.get("CONTAINERD_NAMESPACE"),
        help="containerd namespace (env CONTAINERD_NAMESPACE; default 'default')",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="show debug output (plugin logs for run-job)"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("pull", help="pull an image")
    s.add_argument("ref", metavar="REF")
    s.add_argument("--user", help="registry user name")
    s.add_argument(
        "--password-stdin", action="store_true", help="read the registry password from stdin"
    )
    s.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="give up after this long")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("run", help="run a container (pulls the image if missing)")
    s.add_argument("image", metavar="IMAGE")
    s.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="ARGS",
        help="command and arguments (default: the image's)",
    )
    s.add_argument("--rm", action="store_true", help="remove the container when it exits")
    s.add_argument(
        "-e",
        "--env",
        action="append",
        type=_env_pair,
        default=[],
        metavar="K=V",
        help="set an env variable",
    )
    s.add_argument("--name", metavar="ID", help="container id (default: generated)")
    s.add_argument("-d", "--detach", action="store_true", help="start it and print its id")

    sub.add_parser("ps", help="list containers and their task state")

    s = sub.add_parser("stats", help="resource use of a running container")
    s.add_argument("id", metavar="ID")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("exec", help="run a command in a running container")
    s.add_argument("id", metavar="ID")
    s.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")

    s = sub.add_parser("rm", help="remove containers (their task, container and snapshot)")
    s.add_argument("-f", "--force", action="store_true", help="kill a running task first")
    s.add_argument("ids", nargs="+", metavar="ID")

    s = sub.add_parser("logs", help="print a container's output (containers started with run -d)")
    s.add_argument("id", metavar="ID")

    s = sub.add_parser(
        "run-job", help="run one task of a Nomad job file through the driver plugin, locally"
    )
    s.add_argument("job", metavar="FILE.nomad")
    s.add_argument(
        "--task", metavar="NAME", help="the task to run (needed when the job has several)"
    )
    s.add_argument(
        "--agent", metavar="AGENT.hcl", help='agent config with a plugin "containerd-driver" block'
    )
    s.add_argument(
        "--alloc-dir",
        metavar="DIR",
        help="allocation directory to use and keep (default: a temporary one)",
    )
    s.add_argument(
        "--plugin", metavar="PATH", help="plugin executable (default: containerd-driver)"
    )
    s.add_argument(
        "--stop-after",
        metavar="SECONDS",
        type=float,
        help="stop the task after this long, as a first Ctrl-C would (for demos and smoke runs)",
    )
    return p


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "run-job":
        from nomad_ctr.cli.runjob import run_job

        return run_job
    from nomad_ctr.cli import containers

    return getattr(containers, f"cmd_{command}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("run", "exec") and args.args[:1] == ["--"]:
        args.args = args.args[1:]
    try:
        return _handler(args.command)(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except CliError as exc:
        print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:
        return 1
    except Exception as exc:  # one line, never a traceback (NOMAD_CTR_DEBUG=1 shows it)
        if os.environ.get("NOMAD_CTR_DEBUG") == "1":
            raise
        print(f"{PROG}: {_describe(exc)}", file=sys.stderr)
        return 1


def _describe(exc: Exception) -> str:
    """nomad_ctr errors carry their own clear text; others get their type name too."""
    mod = type(exc).__module__
    if mod.startswith("nomad_ctr") or isinstance(exc, (OSError, ValueError)):
        return _one_line(exc)
    return f"{type(exc).__name__}: {_one_line(exc)}"
