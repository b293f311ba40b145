"""`federator logs JOB`: the tail of a job's output, read through the federator (jobs.proto Logs).

Why a module of its own: a user has no credentials to the member clusters their job runs on, so `kubectl logs` is
not theirs to run; the federator asks each member's agent (server/logs.py) and this prints what came, a header
per replica (`==> cluster/pod (replica N) <==`, as `tail` does for several files) when there is more than one,
each cluster that said nothing on stderr, and exits non-zero when nothing could be read.

With -f/--follow it prints the last lines and then each new line as it is written (jobs.proto FollowLogs: the
federator reads the members every 2 s, and sends each line once), every line begun `[cluster/pod replica N]`
unless one replica was asked for, until the job ends (exit 0, the phase on stderr), Ctrl-C (exit 130, as
`federator wait`), or the follow ends while the job may still run: the federator stopping (exit 4, "try again"),
the follow's bound of 24 h (exit 5, as `wait --timeout`), the job removed (exit 3). The server says which end it
is in FollowLogsMessage.end (a FollowEnd), never only in words (`FOLLOW_EXIT`), so `logs -f JOB > out && next`
runs `next` only after the job ended.

A follow of a job that has no placement yet (just submitted, or queued again) waits for it to run, on the job's
Watch as `federator wait --for Running` does, and then follows (outside QA, teams from SkyPilot, M13: `submit &&
logs -f`, which `sky launch` is, failed at once with "has never been placed"). A job that ends without running
ends the follow as `wait` would (exit 1, its phase and message).

The text is the job's own output as a member's agent sent it: control characters other than a line break or a
tab are written as escapes (termtext.visible), so an agent cannot drive the user's terminal.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

import grpc

from federator.cli.calls import connect, fail, server_arguments
from federator.cli.certs import client_options
from federator.cli.watch import WATCH_PATIENCE
from federator.security.tls import TlsError
from federator.termtext import visible

LOGS_TIMEOUT = 30.0
"""Seconds a logs call may take: the federator waits 10 s at most for a member's agent."""
FOLLOW_EXIT = {"FOLLOW_END_UNSPECIFIED": 0, "FOLLOW_END_JOB_ENDED": 0, "FOLLOW_END_BOUND": 5,
               "FOLLOW_END_FEDERATOR_STOPPING": 4, "FOLLOW_END_JOB_REMOVED": 3}
"""The exit status of `logs -f` per FollowLogsMessage.end, a FollowEnd (users.md, "Exit status"): 0 only when the
job ended; unspecified is a federator before the field, whose every end was read as the job's; an end this CLI does
not know (a newer federator's) is 4: it is not the job's."""
FOLLOW_BOUND_SECONDS = 24 * 3600.0
"""How long a follow waits for a job not placed yet: a follow's own bound (the federator ends one after 24 h)."""
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lg = sub.add_parser("logs", help="print the last lines of a job's output, read from the clusters it ran on",
                        description="Print the tail of a job's output: each replica's last lines, read by the "
                                    "agent of each member cluster the job ran on (live or finished, while the "
                                    "member keeps its pods). Who may see the job may read it. With -f, follow it: "
                                    "print each new line as it is written until the job ends or Ctrl-C.")
    lg.add_argument("job", help="job id, namespace/name, or name")
    lg.add_argument("--replica", type=_count("a replica index", 0), default=None, metavar="N",
                    help="only replica N of each placement (its index within the placement; default: every one)")
    lg.add_argument("--container", default="", metavar="C",
                    help="the container to read (default: each pod's accelerator container, as the template's "
                         "annotation federator.io/accelerator-container names it, else its first)")
    lg.add_argument("-f", "--follow", action="store_true",
                    help="after the last lines, print each new line as it is written, prefixed [cluster/pod "
                         "replica N], until the job ends (exit 0) or Ctrl-C (exit 130); at most 24 h (then exit "
                         "5); the federator stopping: exit 4, follow again. A job not placed yet is waited for "
                         "first (submit -f job.yaml && logs JOB -f follows it from its start)")
    lg.add_argument("--tail", type=_count("a number of lines", 1, 10_000), default=None, metavar="N",
                    help="the last N lines of each replica, at most 10000 (default 100; with --follow 10)")
    lg.add_argument("--limit-bytes", type=_count("bytes", 1, 512 * 1024), default=None, metavar="B",
                    help="at most B bytes of text in all, shared among the replicas, at most 524288 "
                         "(default 65536; not with --follow, which reads as much as a read holds)")
    server_arguments(lg)
    lg.set_defaults(func=_logs)


def _count(what: str, low: int, high: int | None = None) -> argparse._ActionType:
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if n < low or (high is not None and n > high):
            raise argparse.ArgumentTypeError(f"must be {what} from {low}" + (f" to {high}" if high else "") +
                                             f", got {n}")
        return n
    return parse


def shown(text: str) -> str:
    """Output as a terminal may print it: line breaks and tabs kept, every other control character escaped."""
    return _CONTROL_BUT_LINES.sub(lambda m: visible(m.group()), text)


def _logs(args: argparse.Namespace) -> int:
    from federator.api.v1 import jobs_pb2

    if args.follow:
        return _follow(args)
    request = jobs_pb2.JobLogsRequest(job_id=args.job, container=args.container, tail_lines=args.tail or 100,
                                      limit_bytes=args.limit_bytes or 64 * 1024)
    if args.replica is not None:
        request.replica = args.replica
    try:
        with connect(client_options(args)) as (jobs, _):
            got = jobs.Logs(request, timeout=LOGS_TIMEOUT)
    except (grpc.RpcError, TlsError) as err:
        if isinstance(err, grpc.RpcError) and hasattr(err, "code") and err.code() is grpc.StatusCode.UNIMPLEMENTED:
            print(f"error: the federator at {args.server} serves no logs: it is older than 0.13.0 (UNIMPLEMENTED)",
                  file=sys.stderr)
            return 1
        return fail(err, args, seconds=LOGS_TIMEOUT)
    return print_logs(got)


def _follow(args: argparse.Namespace) -> int:
    """`federator logs -f`: the FollowLogs stream printed as it comes; 130 on Ctrl-C. A job with no placement yet
    is waited for (`_until_placed`) and then followed."""
    from federator.api.v1 import jobs_pb2

    if args.limit_bytes is not None:
        print("error: --limit-bytes: not with --follow (a follow reads as much as one read holds)", file=sys.stderr)
        return 2
    request = jobs_pb2.FollowLogsRequest(job_id=args.job, container=args.container, tail_lines=args.tail or 0)
    if args.replica is not None:
        request.replica = args.replica
    ended = False  # the last wait found the job ended: it ran, and has no placement left to read
    while True:
        got = _follow_once(args, request)
        if isinstance(got, int):
            return got
        if ended:
            print(f"error: {got}", file=sys.stderr)
            return 1
        code, ended = _until_placed(args)
        if code is not None:
            return code


def _until_placed(args: argparse.Namespace) -> tuple[int | None, bool]:
    """Wait on the job's Watch until it runs (None: follow it now) or can no longer (its exit status, the line
    said), within a follow's own bound (FOLLOW_BOUND_SECONDS) and reconnecting as `watch` does; and whether the
    job had ended."""
    from federator.cli import wait

    print(f"logs: job {shown(args.job)} is not placed now; waiting for it to run (Ctrl-C to stop)", file=sys.stderr,
          flush=True)
    streams = wait.Streams()
    try:
        outcome = wait.follow(client_options(args), args.job, wait.Condition.RUNNING,
                              deadline=time.monotonic() + FOLLOW_BOUND_SECONDS, reconnect_for=WATCH_PATIENCE,
                              streams=streams, args=args)
    except KeyboardInterrupt:
        return 130, False
    finally:
        streams.stop()
    if outcome.code:
        if outcome.line:
            print(f"error: {outcome.line}", file=sys.stderr)
        return int(outcome.code), outcome.ended
    print(f"logs: {outcome.line}", file=sys.stderr, flush=True)
    return None, outcome.ended


def _follow_once(args: argparse.Namespace, request: Any) -> int | str:
    """One FollowLogs stream printed, and its exit status; the federator's words when the job has no placement
    to read now (FAILED_PRECONDITION)."""
    call = None
    try:
        with connect(client_options(args)) as (jobs, _):
            call = jobs.FollowLogs(request)
            for message in call:
                print_follow(message, prefixed=args.replica is None)
                if message.ended:
                    print(f"logs: {shown(message.ended)}", file=sys.stderr)
                    return follow_exit(message)
            return 0
    except KeyboardInterrupt:
        if call is not None:
            call.cancel()
        return 130
    except (grpc.RpcError, TlsError) as err:
        if isinstance(err, grpc.RpcError) and hasattr(err, "code") and \
                err.code() is grpc.StatusCode.FAILED_PRECONDITION:
            return str(err.details())  # type: ignore[attr-defined]  # no placement now (server/job_service.py logs_job)
        if isinstance(err, grpc.RpcError) and hasattr(err, "code") and err.code() is grpc.StatusCode.UNIMPLEMENTED:
            print(f"error: the federator at {args.server} cannot follow logs: it is older than 0.15.0 "
                  "(UNIMPLEMENTED); run federator logs without --follow", file=sys.stderr)
            return 1
        return fail(err, args)


def follow_exit(message: object) -> int:
    """The exit status of a follow that `message` (its last, `ended` set) ends: see FOLLOW_EXIT."""
    from federator.api.v1 import jobs_pb2

    assert isinstance(message, jobs_pb2.FollowLogsMessage)
    known = {int(v): k for k, v in jobs_pb2.FollowEnd.items()}
    return FOLLOW_EXIT.get(known.get(int(message.end), ""), 4)  # an end newer than this CLI: not the job's: retry


def print_follow(message: object, *, prefixed: bool) -> None:
    """Print one FollowLogsMessage: each line `[cluster/pod replica N] ` first when `prefixed`, errors on stderr."""
    from federator.api.v1 import jobs_pb2

    assert isinstance(message, jobs_pb2.FollowLogsMessage)
    for entry in message.logs:
        where = f"{entry.cluster}/{entry.pod or entry.placement_id}"
        if entry.error:
            print(f"error: {where} (replica {entry.replica}): {shown(entry.error)}", file=sys.stderr)
            continue
        prefix = f"[{where} replica {entry.replica}] " if prefixed else ""
        if entry.truncated:
            print(f"{prefix}... (lines were lost here: more came between two reads than one read holds)")
        for line in shown(entry.text).splitlines():
            sys.stdout.write(f"{prefix}{line}\n")
    for error in message.errors:
        print(f"error: {shown(error.message)} (placement {error.placement_id})", file=sys.stderr)
    sys.stdout.flush()


def print_logs(got: object) -> int:
    """Print a JobLogsResponse; 0 when some replica's output was read, else 1."""
    from federator.api.v1 import jobs_pb2

    assert isinstance(got, jobs_pb2.JobLogsResponse)
    read = 0
    many = len(got.logs) > 1
    for i, entry in enumerate(got.logs):
        where = f"{entry.cluster}/{entry.pod or entry.placement_id}"
        if entry.error:
            print(f"error: {where} (replica {entry.replica}): {shown(entry.error)}", file=sys.stderr)
            continue
        read += 1
        if many:
            print(("\n" if i else "") + f"==> {where} (replica {entry.replica}) <==")
        text = shown(entry.text)
        sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    for error in got.errors:
        print(f"error: {shown(error.message)} (placement {error.placement_id})", file=sys.stderr)
    sys.stdout.flush()
    return 0 if read else 1


__all__ = ["FOLLOW_EXIT", "LOGS_TIMEOUT", "follow_exit", "print_follow", "print_logs", "register", "shown"]
