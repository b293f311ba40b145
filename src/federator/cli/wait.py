"""`federator wait JOB... [--for Finished|Succeeded|Running] [--timeout DURATION]`: block until jobs are in a state.

Why a command of its own: a script must be able to wait for a job and learn its outcome from the exit status,
as `kubectl wait` does in Kubernetes mode and `sbatch --wait` does on Slurm; `federator wait A && federator submit
-f b.yaml` is `--dependency=afterok`. `federator watch JOB` is for people: it prints changes until stopped (its
stream stays open after the job ends), so scripts polled `get job -o json` and parsed the phase instead.

How: each job's own Watch stream (JobService.Watch of one job, no polling): its first message is the job as it is,
so a job already in the state answers at once; each change is judged as it comes. A stream that breaks (the
federator restarted, or dropped a slow reader) is opened again as `federator watch` does (cli/watch.py's
`can_resume`, for --reconnect-for seconds), by the job's id: a name resolves to its newest job once, and a
`--run-again` meanwhile does not change which job is waited for. Several jobs are followed at once (a few
streams at a time) and all must hold: the first that cannot ends the wait, so a failed job of ten is told at once.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as first_of
from dataclasses import dataclass
from enum import StrEnum

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import arg_types, watch
from federator.cli.calls import fail, server_arguments
from federator.cli.certs import client_options
from federator.cli.exit_codes import Exit
from federator.model import Job, JobPhase
from federator.security.tls import ClientOptions, TlsError
from federator.termtext import cell

STREAMS_AT_ONCE = 8
"""Jobs followed at once by one `federator wait`: each is a Watch stream, and a user may hold 32 by default
(serve --max-watches-per-user). The rest wait their turn; a job already in the state frees its stream at once."""
LOOK_ONCE_SECONDS = 10.0
"""How long `--timeout 0` (look once, as `kubectl wait --timeout=0s`) waits for the job's first message."""


class Condition(StrEnum):
    """What `--for` waits for. Named as the FederatedJob's conditions are for `kubectl wait --for=condition=`."""

    FINISHED = "Finished"  # any end: Succeeded, Failed or Cancelled
    SUCCEEDED = "Succeeded"
    RUNNING = "Running"  # it has started: Running now, or ended after it ran


@dataclass(frozen=True, slots=True)
class Verdict:
    """A job judged against the condition: it holds, or it never can again (`line` says why)."""

    holds: bool
    line: str


def judge(job: Job, condition: Condition) -> Verdict | None:
    """Whether `condition` holds for `job`, can no longer hold, or may yet (None: wait on)."""
    phase = job.phase
    said = f"job {job.job_id} ({job.spec.namespace}/{job.spec.name}) {phase}"
    why = cell(job.message) if job.message else ""
    ended = f"{said}" + (f": {why}" if why else "")
    if condition is Condition.FINISHED:
        return Verdict(True, said) if phase.is_terminal else None
    if condition is Condition.SUCCEEDED:
        if phase is JobPhase.SUCCEEDED:
            return Verdict(True, said)
        return Verdict(False, f"{ended}; it will not succeed: it has ended") if phase.is_terminal else None
    if phase is JobPhase.RUNNING or (phase.is_terminal and job.started_at):
        return Verdict(True, said if phase is JobPhase.RUNNING else f"{said} (it ran)")
    if phase.is_terminal:
        return Verdict(False, f"{ended}; it ended without running")
    return None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = sub.add_parser(
        "wait", help="wait until jobs finish, succeed or run (for scripts: the exit status says)",
        description="Wait until every job named is in the state --for names, as kubectl wait does. Exit 0 when "
                    "all are; 1 as soon as one cannot be any more (it failed or was cancelled while waiting for "
                    "Succeeded, or ended without running while waiting for Running: the line says its phase and "
                    "message); 3 for a job not found, or gone before it finished (a federator that came back on a "
                    "store restored from an older backup does not know it: submit it again); 4 when the federator "
                    "cannot be reached (for --reconnect-for once the wait began); 5 when --timeout passes first. "
                    "A job already in the state answers at once. Chain jobs with it: federator wait prep --for "
                    "Succeeded && federator submit -f train.yaml.")
    w.add_argument("jobs", nargs="+", metavar="JOB", help="job id, namespace/name, or name (its newest job)")
    w.add_argument("--for", dest="condition", type=Condition, choices=list(Condition), default=Condition.FINISHED,
                   metavar="CONDITION",
                   help="Finished (any end: Succeeded, Failed, Cancelled), Succeeded, or Running (it has started: "
                        "running now, or ended after it ran) (default Finished)")
    w.add_argument("--timeout", type=timeout_of, default=math.inf, metavar="DURATION",
                   help="give up after this long, such as 90s, 30m, 12h or 1h30m (plain numbers are seconds); "
                        "0 looks once (default: no limit)")
    w.add_argument("--reconnect-for", type=arg_types.seconds, default=watch.WATCH_PATIENCE, metavar="SECONDS",
                   help="how long to keep trying to reconnect to a federator that went away (a restart) before "
                        "giving up (default %(default)s)")
    server_arguments(w)
    w.set_defaults(func=_wait)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def timeout_of(text: str) -> float:
    """A duration as kubectl takes one: 90s, 30m, 12h, 1h30m, 0 (plain numbers are seconds)."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise argparse.ArgumentTypeError(
                f"expected a duration such as 90s, 30m, 12h or 1h30m, got {text[:40]!r}") from None
        seconds = sum(float(n) * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[u] for n, u in parts)
    if not 0 <= seconds < math.inf:
        raise argparse.ArgumentTypeError(f"expected a duration of 0 or more, got {text[:40]!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one job's wait ended: its exit status, and the line that says so (stdout when it holds)."""

    code: int
    line: str = ""
    ended: bool = False  # the job had ended when the wait ended (a job that ran and ended holds --for Running)


class Streams:
    """The Watch calls open now, so that the first job that cannot hold ends the others' waits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[grpc.Future] = set()
        self.stopped = False

    def add(self, call: grpc.Future) -> None:
        with self._lock:
            if self.stopped:
                call.cancel()
            self._open.add(call)

    def drop(self, call: grpc.Future) -> None:
        with self._lock:
            self._open.discard(call)

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            for call in self._open:
                call.cancel()


def follow(opts: ClientOptions, key: str, condition: Condition, *, deadline: float, reconnect_for: float,
           streams: Streams, args: argparse.Namespace, clock: Callable[[], float] = time.monotonic) -> Outcome:
    """Wait on one job's Watch until `condition` holds, can no longer hold, or `deadline` (a `clock` time) passes."""
    job_id, last = key, None
    lost_at = 0.0  # when the stream broke (0: it has not)
    came_back = False  # the federator went away and came back since the job was seen: a restore may have lost it
    delay = 0.5
    given: float | None = None  # the last Watch's deadline, for "no answer in N s"
    while True:
        left = deadline - clock()
        if last is not None and left <= 0:
            return _timed_out(last, key, condition)
        try:
            with opts.channel() as channel:
                if lost_at:
                    grpc.channel_ready_future(channel).result(
                        timeout=max(0.1, min(5.0, lost_at + reconnect_for - clock())))
                    print(f"wait: the federator at {opts.server} is back after {clock() - lost_at:.0f} s",
                          file=sys.stderr, flush=True)
                    lost_at, delay, came_back = 0.0, 0.5, last is not None
                request = jobs_pb2.WatchJobsRequest(job_id=job_id, send_bookmarks=True)
                given = left if 0 < left < math.inf else None if left > 0 else LOOK_ONCE_SECONDS
                call = jobs_pb2_grpc.JobServiceStub(channel).Watch(request, timeout=given)
                streams.add(call)
                try:
                    for pb in call:
                        if pb.removed:
                            return _removed(job_id, condition, last, came_back, opts.server)
                        if not pb.job_id:
                            continue  # a bookmark
                        last = convert.job_from_pb(pb)
                        job_id = last.job_id
                        verdict = judge(last, condition)
                        if verdict is not None:
                            return Outcome(Exit.OK if verdict.holds else Exit.FAILED, verdict.line,
                                           last.phase.is_terminal)
                        if clock() >= deadline:
                            return _timed_out(last, key, condition)
                    # a Watch with bookmarks ends OK only after a removal
                    return _removed(job_id, condition, last, came_back, opts.server)
                finally:
                    streams.drop(call)
                    call.cancel()
        except grpc.FutureTimeoutError:
            pass  # not back yet
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            if streams.stopped and code is grpc.StatusCode.CANCELLED:
                return Outcome(Exit.FAILED)  # another job ended the wait
            if code is grpc.StatusCode.DEADLINE_EXCEEDED and clock() >= deadline and last is not None:
                return _timed_out(last, key, condition)
            if code is grpc.StatusCode.NOT_FOUND and last is not None:
                # a federator before Watch's removals ends the stream so; one whose store was restored knows no such job
                return _removed(job_id, condition, last, came_back, opts.server)
            if not (last is not None or lost_at) or not watch.can_resume(err):
                return Outcome(fail(err, args, prefix=f"{key}: ", seconds=given))
            if not lost_at:
                lost_at = clock()
                print(f"wait: lost the federator at {opts.server} ({err.details()}); reconnecting for up to "  # type: ignore[attr-defined]
                      f"{reconnect_for:.0f} s", file=sys.stderr, flush=True)
        except TlsError as err:
            return Outcome(fail(err, args))
        if clock() - lost_at >= reconnect_for:
            return Outcome(Exit.UNAVAILABLE, f"the federator at {opts.server} went away and did not come back in "
                              f"{reconnect_for:.0f} s; job {job_id} was {last.phase if last else 'not seen'}")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _removed(job_id: str, condition: Condition, last: Job | None, came_back: bool, server: str) -> Outcome:
    """The job is gone. Only a finished job's record expires (--finished-job-ttl): an unfinished one is unknown to a
    federator that came back on a restored store (outside operator DR QA D2: this said "finished and its record
    expired" of a job last seen Running), or was deleted (Kubernetes mode: its FederatedJob). Exit 3, not found:
    the job may be submitted again."""
    if last is None or last.phase.is_terminal:
        return Outcome(Exit.FAILED, f"job {job_id} was removed (its finished record expired): whether it is "
                                    f"{condition} cannot be told")
    if came_back:
        return Outcome(Exit.NOT_FOUND, watch.lost_line(job_id, last.phase, server))
    return Outcome(Exit.NOT_FOUND, f"job {job_id} (last seen {last.phase}) was removed before it finished (deleted: "
                                   "in Kubernetes mode, its FederatedJob)")


def _timed_out(job: Job, key: str, condition: Condition) -> Outcome:
    why = f" ({cell(str(job.pending_reason))})" if job.pending_reason else ""
    return Outcome(Exit.TIMED_OUT, f"timed out waiting for job {job.job_id} ({key}) to be {condition}: it is "
                                   f"{job.phase}{why}")


def _wait(args: argparse.Namespace) -> int:
    try:
        opts = client_options(args)
    except TlsError as err:
        return fail(err, args)
    deadline = time.monotonic() + args.timeout
    streams = Streams()
    keys = list(dict.fromkeys(args.jobs))
    pool = ThreadPoolExecutor(max_workers=min(len(keys), STREAMS_AT_ONCE), thread_name_prefix="wait")
    waits: dict[Future[Outcome], str] = {
        pool.submit(follow, opts, key, args.condition, deadline=deadline, reconnect_for=args.reconnect_for,
                    streams=streams, args=args): key for key in keys}
    code = 0
    try:
        left = set(waits)
        while left and not code:
            done, left = first_of(left, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                if outcome.line:
                    print(outcome.line if not outcome.code else f"error: {outcome.line}",
                          file=sys.stdout if not outcome.code else sys.stderr, flush=True)
                code = code or outcome.code
    except KeyboardInterrupt:
        code = 130
    finally:
        streams.stop()
        pool.shutdown(wait=True, cancel_futures=True)
    return code


__all__ = ["Condition", "Outcome", "Streams", "Verdict", "follow", "judge", "register", "timeout_of"]
