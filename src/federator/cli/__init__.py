"""The `federator` command line: serve, agent, demo, submit, get, cancel, watch, usage, certs, sim.

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
from federator.cli import agent, certs, client, demo, serve, sim, usage  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="federator", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"federator {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, agent, client, usage, demo, certs, sim):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
