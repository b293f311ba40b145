"""The `federator` command line: serve, agent, submit, get, cancel, scale, hold, release, watch, wait, cordon, drain,
usage, whoami, certs, policy and more.

Each command group lives in a module of its own with a `register` function
that adds its sub-commands; `main` only wires them together.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

# gRPC's C core logs a failed TLS handshake at INFO on stderr, above the command's own one-line error; its
# errors still show. Set before grpc is first imported (below); an operator's own GRPC_VERBOSITY wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from federator import __version__  # noqa: E402
from federator.cli import (  # noqa: E402
    agent,
    audit,
    backup,
    certs,
    client,
    cordon,
    demo,
    drain,
    hold,
    job_logs,
    policy,
    restore,
    serve,
    sim,
    usage,
    wait,
    whoami,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="federator", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"federator {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = (serve, agent, client, hold, job_logs, wait, cordon, drain, usage, whoami, demo, certs, policy, sim,
                backup, audit, restore)
    for module in commands:
        module.register(sub)
    return parser


def _parsed(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, with `get`'s optional name also taken after the flags (`get jobs --server X NAME`):
    argparse fills an optional positional at its first chance, empty when a flag follows `jobs`, and then
    refused the name as an unrecognized argument. So are the jobs of a command that takes several (`cancel`, `hold`,
    `release`, `wait`) after a flag: argparse took only those before it (`cancel a --server X b`)."""
    args, extra = parser.parse_known_args(argv)
    if (extra and getattr(args, "command", "") == "get" and getattr(args, "name", "") is None and len(extra) == 1
            and not extra[0].startswith("-")):
        args.name = extra[0]
    elif extra and isinstance(getattr(args, "jobs", None), list) and not any(e.startswith("-") for e in extra):
        args.jobs.extend(extra)  # `cancel a --server X b`: a command of several jobs takes them around its flags
    elif extra:
        _deepest(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _deepest(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser the arguments chose, so that its usage, not the top level's list of commands,
    goes with an error about its arguments (`get jobs a b` prints `get`'s usage)."""
    while True:
        chosen = next((action.choices[getattr(args, action.dest)] for action in parser._actions
                       if isinstance(action, argparse._SubParsersAction) and isinstance(action.choices, dict)
                       and getattr(args, action.dest, None) in action.choices), None)
        if chosen is None:
            return parser
        parser = chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parsed(parser, argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, not at exit, so that a reader gone before the last line is handled below
        return code
    except BrokenPipeError:
        # The reader went away (`federator watch | head`): the end of the output, not a failure to trace.
        # Exit as a tool killed by SIGPIPE does, with stdout on /dev/null so that the interpreter's last
        # flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13


__all__ = ["build_parser", "main"]
