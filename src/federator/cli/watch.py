"""`federator watch [JOB]`: print job changes until interrupted, each line saying something new, reconnecting
to a federator that went away (a restart) for --reconnect-for seconds (`can_resume`; `federator wait` resumes
its streams by the same rule).

Why a reconnect asks for bookmarks (outside operator DR QA D2): a federator that comes back on a store restored
from a backup does not know the jobs accepted after the backup. Its Watch lists the jobs it knows and says nothing
of the others, so a watcher never learnt they vanished. After a cut the Watch sets send_bookmarks: the first
bookmark closes the snapshot, and each unfinished job seen before it and not in it is said once, plainly
(`lost_line`; `federator wait` says the same of the job it waits on).

Why it takes `get jobs`' selectors (outside QA, teams from Armada, M3): a team watches one set of jobs, as
`armadactl watch QUEUE JOBSET` does, not the whole federation; `--queue`, `--namespace`, `--name-prefix`,
`--owner`, `--array` and `-l` (labels, kubectl's selector) keep the jobs `get jobs` and `cancel` would take with
them. The CLI keeps them (`Query.takes`, the federator's own rule): the stream still brings every job the caller
may see."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.cli import calls, job_list
from federator.cli.certs import client_options
from federator.cli.exit_codes import Exit
from federator.model import Job, JobPhase
from federator.security.tls import ClientOptions, TlsError
from federator.server.job_listing import Query
from federator.termtext import cell

EVERY_JOB = Query()
"""No selector: `watch` keeps every job the stream brings."""

WATCH_PATIENCE = 60.0
"""Seconds `federator watch` waits for a federator that went away (a restart) to come back before it gives up."""


def watch_lines(jobs: Iterable[Job], last: dict[str, str] | None = None) -> Iterator[str]:
    """`federator watch`'s lines: a job's id, phase and clusters, and why it waits (its pending reason) or
    else what it says (its message: what a Placed job waits for on its member, why it failed).

    The federator announces every change to a job, many of them in fields no line shows (a placement's
    own phase, a timestamp), so a line that would repeat the job's last one is not printed: each line
    says something new. `last` (each job's last line) carries that across a reconnect, whose first answers
    are every job again."""
    last = {} if last is None else last
    for job in jobs:
        where = ",".join(dict.fromkeys(p.cluster for p in job.placements)) or "-"  # a scale-up: two on one
        why = str(job.pending_reason) if job.pending_reason and not job.replicas_waiting else job.message
        line = cell(f"{job.job_id} {job.phase} {where} {why}".rstrip())  # a member's words, shown not obeyed
        if last.get(job.job_id) != line:
            last[job.job_id] = line
            yield line


def lost_line(job_id: str, phase: JobPhase, server: str) -> str:
    """What a client says of an unfinished job the federator it reconnected to does not know."""
    return (f"job {job_id} (last seen {phase}) is not known to the federator at {server} since it came back: it was "
            "lost, most likely in a restore of the federator's store from a backup taken before it was accepted; "
            "submit it again (what a member still runs of it is cancelled after the federator's --orphan-grace)")


def _lines(pbs: Iterable[types_pb2.Job], last: dict[str, str], phases: dict[str, JobPhase], *, after_cut: bool,
           server: str, only: Query = EVERY_JOB) -> Iterator[str]:
    """`watch_lines` of a Watch's messages, of the jobs `only` takes; after a cut (a Watch with bookmarks), at the
    first bookmark, a line for each unfinished job seen before the cut that the new snapshot did not hold
    (`lost_line`)."""
    seen: set[str] | None = set() if after_cut else None
    for pb in pbs:
        if not pb.job_id:  # a bookmark: the first one closes the snapshot
            if seen is not None:
                for job_id in [j for j, phase in phases.items() if j not in seen and not phase.is_terminal]:
                    yield cell(f"{job_id} Gone - {lost_line(job_id, phases.pop(job_id), server)}")
                seen = None
            continue
        if pb.removed:  # a finished job's record expired (or a FederatedJob deleted): nothing more will change
            phases.pop(pb.job_id, None)
            continue
        job = convert.job_from_pb(pb)
        if not only.takes(job):  # queue, namespace, name, owner, array, accepted labels never change: in or out
            continue
        if seen is not None:
            seen.add(job.job_id)
        phases[job.job_id] = job.phase
        yield from watch_lines([job], last)


def run(args: argparse.Namespace) -> int:
    """Print job changes until interrupted. A federator that goes away after the watch began (a restart; the
    stream breaks with UNAVAILABLE) is waited for, with backoff, for --reconnect-for seconds: the watch says it
    lost the federator and when it is back, then goes on printing only what changed meanwhile. A federator that
    cannot be reached when the watch starts is an error at once, as for any other command."""
    only = selection(args)
    if args.job and only != EVERY_JOB:
        print("error: --queue, --namespace, --name-prefix, --owner, --array and -l go with `watch` of every job, not "
              "one job", file=sys.stderr)
        return Exit.USAGE
    try:
        opts = client_options(args)
        if only != EVERY_JOB and (refused := _refused(opts, only, args)) is not None:
            return refused
    except (grpc.RpcError, TlsError) as err:
        return calls.fail(err, args)
    last: dict[str, str] = {}
    phases: dict[str, JobPhase] = {}  # each job's last phase seen: what a restored store's loss is told by
    lost_at = 0.0  # when the federator went away (0: it has not)
    cut = False  # a Watch broke once: the next ones ask for bookmarks
    delay = 0.5
    while True:
        try:
            with opts.channel() as channel:
                ready = grpc.channel_ready_future(channel)
                if lost_at:
                    ready.result(timeout=max(0.1, min(5.0, lost_at + args.reconnect_for - time.monotonic())))
                    print(f"watch: the federator at {opts.server} is back after {time.monotonic() - lost_at:.0f} s; "
                          "watching again (jobs that changed meanwhile follow)", file=sys.stderr, flush=True)
                    lost_at, delay = 0.0, 0.5
                stub = jobs_pb2_grpc.JobServiceStub(channel)
                stream = watched(stub, jobs_pb2.WatchJobsRequest(job_id=args.job, send_bookmarks=cut))
                try:
                    for line in _lines(stream, last, phases, after_cut=cut, server=opts.server, only=only):
                        print(line, flush=True)
                except grpc.RpcError as err:
                    connected = ready.done() and not ready.cancelled() and ready.exception() is None
                    if cut and args.job and err.code() is grpc.StatusCode.NOT_FOUND and phases:
                        job_id, phase = next(iter(phases.items()))  # the one job watched, unknown since the cut
                        if not phase.is_terminal:
                            print(f"error: {lost_line(job_id, phase, opts.server)}", file=sys.stderr, flush=True)
                            return Exit.NOT_FOUND
                    if not (connected and can_resume(err)):
                        raise
                    cut = True
                    lost_at = time.monotonic()
                    print(f"watch: lost the federator at {opts.server} ({err.details()}); reconnecting for up to "  # type: ignore[attr-defined]
                          f"{args.reconnect_for:.0f} s", file=sys.stderr, flush=True)
                    continue
                return 0
        except grpc.FutureTimeoutError:
            pass  # not back yet
        except KeyboardInterrupt:
            return 0
        except (grpc.RpcError, TlsError) as err:
            return calls.fail(err, args)
        if time.monotonic() - lost_at >= args.reconnect_for:
            print(f"error: the federator at {opts.server} went away and did not come back in "
                  f"{args.reconnect_for:.0f} s", file=sys.stderr)
            return Exit.UNAVAILABLE
        try:
            time.sleep(delay)
        except KeyboardInterrupt:
            return 0
        delay = min(delay * 2, 5.0)


def watched(stub: jobs_pb2_grpc.JobServiceStub, request: jobs_pb2.WatchJobsRequest) -> Iterator[types_pb2.Job]:
    """The Watch's jobs, read in batches (JobService.WatchBatches, since 0.18.0: a snapshot of 30,000 jobs is 118
    messages, not 30,000, each a turn of a loaded federator's event loop), or from Watch of a federator that
    answers UNIMPLEMENTED (older than 0.18.0): the same stream either way."""
    got = False
    try:
        for batch in stub.WatchBatches(request):
            got = True
            yield from batch.jobs
    except grpc.RpcError as err:
        if got or err.code() is not grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
            raise
        yield from stub.Watch(request)


def _refused(opts: ClientOptions, only: Query, args: argparse.Namespace) -> int | None:
    """The exit of a watch whose selectors `get jobs` would refuse, else None: the federator checks them (one List
    of one job: a malformed namespace, queue or selector is INVALID_ARGUMENT naming its field), and an array no task
    of which the caller may see is an error as in `get jobs`. The CLI keeps the Watch's jobs by them itself, so
    without this a mistyped selector printed nothing and waited for ever (outside QA N1)."""
    with opts.channel() as channel:
        reply = jobs_pb2_grpc.JobServiceStub(channel).List(job_list.request_for(only, page_size=1),
                                                            timeout=calls.CALL_TIMEOUT)
    narrowed = bool(only.queue or only.namespace or only.name_prefix or only.owner or only.label_selector)
    if args.array and not reply.jobs and not narrowed:
        print(f"error: no task of array {args.array!r} that you may see (its id as `submit --array` printed it; "
              "tasks removed after they ended are not listed)", file=sys.stderr)
        return Exit.NOT_FOUND
    return None


def selection(args: argparse.Namespace) -> Query:
    """The jobs `watch` keeps: `get jobs`' selectors as given (none: every job)."""
    return job_list.selected(Query(queue=args.queue, namespace=args.namespace, name_prefix=args.name_prefix,
                                   owner=args.owner, array_id=args.array or ""), args)


def can_resume(err: grpc.RpcError) -> bool:
    """A broken stream a new Watch may resume: the federator went away (UNAVAILABLE), or dropped this watch
    for falling behind (RESOURCE_EXHAUSTED; a new Watch starts from every job's state)."""
    code = err.code() if hasattr(err, "code") else None
    return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


__all__ = ["WATCH_PATIENCE", "can_resume", "lost_line", "run", "selection", "watch_lines", "watched"]
