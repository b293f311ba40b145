"""`federator cancel --queue Q | --all-queues [--phase P] [--owner U] [--name-prefix P] [--yes]`: matching jobs
in bulk.

Why: offboarding an organisation was one `federator cancel` per job, a process and a TLS handshake each (2.1 s
on a busy host: ~2 h for an org's 3,351 pending jobs; outside QA, tenants F7). With `--yes` the command asks the
federator's JobService.CancelJobs, a page at a time: the federator selects the jobs under the caller's visibility,
cancels each as a single Cancel of it would be (a job the caller may see but not cancel, a colleague's under
`jobs: view`, is refused, counted as skipped, never cancelled), and audits the whole once (`cancel.bulk`: who, the
filter, how many) beside each job's own `cancel` line, so an auditor sees one action and every outcome. A
federator older than 0.7.0 answers UNIMPLEMENTED: the command then does what it did before, a List and one Cancel
per job over one channel (each audited as a single cancel; no `cancel.bulk` line).

`--all-queues` (with `--owner`: `scancel -u`) and `--name-prefix` (outside QA HPC H8) are one CancelJobs too, with
CancelJobsRequest's all_queues and name_prefix (since 0.15.0), so every bulk form is one server-side selection and
one `cancel.bulk` line (who, the filter, how many matched). The command sends them only to a federator whose WhoAmI
lists "jobs.cancel_bulk_select": an older one would ignore name_prefix and cancel the whole queue. Against such a
federator (0.7.0 to 0.14.x) the jobs are listed, then cancelled by one CancelJobs per queue, or, with a name
prefix, one Cancel per job (each audited alone), as before.

`-l SELECTOR` (kubectl's label selector, CancelJobsRequest.label_selector, 0.17.0) is sent only to a federator whose
WhoAmI lists "jobs.label_selector": an older one would ignore it and cancel every job the rest of the filter takes.
Against such a federator the command refuses, naming the version, and cancels nothing.

More than one job is cancelled only with `--yes`; without it the jobs are counted (List) and nothing is done, so
a mistyped queue costs nothing; one matching job is cancelled as `federator cancel JOB` would.

Jobs that ended meanwhile are not errors. A failure other than a refusal (the federator away, its store full)
stops the run, saying how far it got: running it again cancels the rest (a cancelled job no longer matches).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc

from federator.api import convert
from federator.api.features import JOBS_CANCEL_BULK_SELECT, JOBS_LABEL_SELECTOR
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli.exit_codes import Exit
from federator.cli.job_list import add_selector_argument, list_matching
from federator.model import Job, JobPhase
from federator.model.label_selector import Selector
from federator.server.job_listing import Query

ACTIVE_PHASES = tuple(p.value for p in JobPhase if not p.is_terminal)
"""What --phase takes: a job that ended cannot be cancelled."""


@dataclass(frozen=True)
class Selection:
    """Which jobs a bulk cancel takes: of a queue ("" = of every queue, --all-queues), in these phases, of this
    owner, with names that start with `name_prefix`."""

    queue: str
    phases: frozenset[JobPhase]
    user: str = ""  # "" = anyone's
    name_prefix: str = ""
    labels: Selector = Selector()  # -l (none: any labels)

    def takes(self, job: Job) -> bool:
        return (not self.queue or job.spec.queue == self.queue) and job.phase in self.phases and \
            (not self.user or job.spec.recorded_user == self.user) and \
            job.spec.name.startswith(self.name_prefix) and self.labels.takes(job.spec.labels)

    def one_call(self, served: Callable[[], frozenset[str]]) -> bool:
        """Whether JobService.CancelJobs can select these jobs itself: one queue, phases and an owner anywhere
        since 0.7.0; every queue and a name prefix where the federator lists "jobs.cancel_bulk_select"
        (`served()` is asked only then)."""
        return bool(self.queue) and not self.name_prefix or JOBS_CANCEL_BULK_SELECT in served()

    def __str__(self) -> str:
        said = f"queue {self.queue!r}" if self.queue else "every queue"
        if self.phases != frozenset(JobPhase(p) for p in ACTIVE_PHASES):
            said += f", {' or '.join(sorted(self.phases))}"
        if self.name_prefix:
            said += f", names starting {self.name_prefix!r}"
        if self.labels.requirements:
            said += f", labels {str(self.labels)!r}"
        return said + (f", owner {self.user!r}" if self.user else "")


@dataclass
class Tally:
    """What a bulk cancel did, for its last line."""

    cancelled: int = 0
    skipped: int = 0  # the federator refused: not the caller's to cancel
    ended: int = 0  # ended (or removed) between the List and the Cancel


def selection(args: argparse.Namespace) -> Selection:
    phases = frozenset(JobPhase(p) for p in (args.phase or ACTIVE_PHASES))
    return Selection(queue=args.queue, phases=phases, user=args.owner or "", name_prefix=args.name_prefix,
                     labels=args.selector or Selector())


def matching(stub: jobs_pb2_grpc.JobServiceStub, chosen: Selection, *, timeout: float) -> list[Job]:
    """The jobs the caller may see that the selection takes, a List page at a time: filtered by the federator
    (queue, phases, owner), and again here, where a federator before 0.7.0 filtered by queue only."""
    query = Query(queue=chosen.queue, phases=chosen.phases, owner=chosen.user, name_prefix=chosen.name_prefix,
                  label_selector=str(chosen.labels), labels=chosen.labels)
    jobs = list_matching(lambda request: stub.List(request, timeout=timeout), query, page_size=1000)
    return [j for j in jobs if chosen.takes(j)]


def cancel_each(stub: jobs_pb2_grpc.JobServiceStub, jobs: Iterable[Job], *, timeout: float) -> Tally:
    """Cancel each job by its id; a refusal is counted, any other failure raised (with the tally so far noted)."""
    tally = Tally()
    for job in jobs:
        try:
            reply = convert.job_from_pb(stub.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id), timeout=timeout))
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            if code is grpc.StatusCode.PERMISSION_DENIED:
                tally.skipped += 1
                continue
            if code is grpc.StatusCode.NOT_FOUND:  # removed by retention meanwhile
                tally.ended += 1
                continue
            err.tally = tally  # type: ignore[attr-defined]
            raise
        if reply.phase is JobPhase.CANCELLED and not job.phase.is_terminal:
            tally.cancelled += 1
        else:
            tally.ended += 1
    return tally


def summary(chosen: Selection, found: int, tally: Tally, *, operation: str = "") -> str:
    said = f"cancelled {tally.cancelled} of {found} job{'' if found == 1 else 's'} of {chosen}"
    if tally.skipped:
        said += (f"; {tally.skipped} skipped: not yours to cancel (the federator refused them: PERMISSION_DENIED; "
                 "ask their owner, a group member who may manage them, or an admin)")
    if tally.ended:
        said += f"; {tally.ended} had ended meanwhile"
    if operation:  # the id on the audit log's cancel.bulk line and on each job's cancel line
        said += f" (audit operation {operation})"
    return said


class Stopped(Exception):
    """The federator's store did not take a cancel: the run stops there (a rerun goes on)."""


def cancel_in_bulk(stub: jobs_pb2_grpc.JobServiceStub, chosen: Selection, *,
                   timeout: float) -> tuple[str, int, Tally]:
    """JobService.CancelJobs, page after page: (operation id, jobs matched, tally). Raises Stopped (with the tally
    so far noted) at a FAILED job, and an RpcError (UNIMPLEMENTED from an older federator) as it comes."""
    request = jobs_pb2.CancelJobsRequest(queue=chosen.queue, owner=chosen.user, name_prefix=chosen.name_prefix,
                                         label_selector=str(chosen.labels),
                                         all_queues=not chosen.queue,
                                         phases=[convert.phase_to_pb(p) for p in sorted(chosen.phases)])
    tally, operation, matched = Tally(), "", 0
    while True:
        try:
            reply = stub.CancelJobs(request, timeout=timeout)
        except grpc.RpcError as err:
            err.tally, err.matched = tally, matched  # type: ignore[attr-defined]
            raise
        operation, matched = reply.operation_id, reply.matched
        for result in reply.results:
            if result.outcome == jobs_pb2.CANCEL_OUTCOME_CANCELLED:
                tally.cancelled += 1
            elif result.outcome == jobs_pb2.CANCEL_OUTCOME_REFUSED:
                tally.skipped += 1
            elif result.outcome == jobs_pb2.CANCEL_OUTCOME_FAILED:
                stop = Stopped(f"{result.namespace}/{result.name}: {result.message}")
                stop.tally, stop.matched, stop.operation = tally, matched, operation  # type: ignore[attr-defined]
                raise stop
            else:
                tally.ended += 1
        if not reply.next_page_token:
            return operation, matched, tally
        request.page_token = reply.next_page_token


def _none() -> frozenset[str]:
    return frozenset()


def run(stub: jobs_pb2_grpc.JobServiceStub, args: argparse.Namespace, *, timeout: float,
        served: Callable[[], frozenset[str]] = _none) -> int:
    """The command's body on a connected stub: 0 done (refusals counted), 2 more than one job without --yes,
    4 stopped by the federator's store (cli/exit_codes.py); `served()` says the federator's API features (WhoAmI,
    asked only for a selection an older CancelJobs cannot make);
    an RpcError other than a refusal is raised to the caller, which says it."""
    chosen = selection(args)
    if chosen.labels.requirements and JOBS_LABEL_SELECTOR not in served():
        print(f"federator cancel: -l needs a federator of 0.17.0 or later (this one does not list "
              f"{JOBS_LABEL_SELECTOR} in `federator whoami`, and would cancel every job the rest of the filter "
              "takes); nothing cancelled", file=sys.stderr)
        return Exit.USAGE
    if args.yes and not chosen.one_call(served):
        return _queue_by_queue(stub, chosen, args, timeout=timeout)
    if args.yes:
        try:
            operation, matched, tally = cancel_in_bulk(stub, chosen, timeout=timeout)
        except Stopped as stop:
            said = summary(chosen, getattr(stop, "matched", 0), getattr(stop, "tally", Tally()),
                           operation=getattr(stop, "operation", ""))
            print(f"federator cancel: stopped after {said}: the federator did not store the cancel of {stop}; "
                  "run it again to cancel the rest", file=sys.stderr)
            return Exit.UNAVAILABLE  # the store took no write: the same command, later, goes on
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            if code is grpc.StatusCode.UNIMPLEMENTED:
                return _one_by_one(stub, chosen, args, timeout=timeout)  # a federator before 0.7.0
            done: Tally = getattr(err, "tally", Tally())
            if done.cancelled or done.skipped or done.ended:
                print(f"federator cancel: stopped after {summary(chosen, getattr(err, 'matched', 0), done)}; "
                      "run it again to cancel the rest", file=sys.stderr)
            raise
        if not matched:
            print(f"no job you may see matches {chosen}; nothing cancelled")
            return 0
        print(summary(chosen, matched, tally, operation=operation))
        return 0
    return _one_by_one(stub, chosen, args, timeout=timeout)


def _queue_by_queue(stub: jobs_pb2_grpc.JobServiceStub, chosen: Selection, args: argparse.Namespace, *,
                    timeout: float) -> int:
    """What a CancelJobs before 0.15.0 cannot select in one call (it takes one queue and no name): the matching jobs
    are listed
    (the federator filters by owner, phase and name prefix over every queue), then each queue's are cancelled by
    one CancelJobs, audited as one operation per queue, when the queue's matching jobs are all its selection
    would take (no name prefix); else, and against a federator before 0.7.0, one Cancel per job."""
    jobs = matching(stub, chosen, timeout=timeout)
    if chosen.name_prefix or not jobs:
        return _one_by_one(stub, chosen, args, timeout=timeout, jobs=jobs)
    code = 0
    for queue in sorted({j.spec.queue for j in jobs}):
        code = max(code, run(stub, argparse.Namespace(**{**vars(args), "queue": queue}), timeout=timeout))
    return code


def _one_by_one(stub: jobs_pb2_grpc.JobServiceStub, chosen: Selection, args: argparse.Namespace, *,
                timeout: float, jobs: list[Job] | None = None) -> int:
    """List (unless `jobs` is that list), then one Cancel per job: without --yes (one matching job at most), a
    selection CancelJobs cannot make, or against an older federator."""
    jobs = matching(stub, chosen, timeout=timeout) if jobs is None else jobs
    if not jobs:
        print(f"no job you may see matches {chosen}; nothing cancelled")
        return 0
    if len(jobs) > 1 and not args.yes:
        print(f"federator cancel: {len(jobs)} jobs you may see match {chosen}; nothing cancelled: pass --yes to "
              "cancel them (jobs you may see but not cancel will be skipped and counted)", file=sys.stderr)
        return 2
    try:
        tally = cancel_each(stub, jobs, timeout=timeout)
    except grpc.RpcError as err:
        done: Tally = getattr(err, "tally", Tally())
        print(f"federator cancel: stopped after {summary(chosen, len(jobs), done)}; run it again to cancel the "
              "rest", file=sys.stderr)
        raise
    print(summary(chosen, len(jobs), tally))
    return 0


def usage_problem(args: argparse.Namespace) -> str:
    """Whether the flags make one command: jobs named, or --queue or --all-queues (with --phase, --owner,
    --name-prefix, -l, --yes). Named jobs and a selection are two ways of choosing: the conflict is named, never
    one of them quietly dropped."""
    if args.queue and args.all_queues:
        return "give --queue or --all-queues, not both"
    many = bool(args.queue or args.all_queues)
    named = ", ".join(args.jobs)
    array = args.array
    if array and (args.jobs or many):
        other = f"jobs named ({named})" if args.jobs else ("--queue" if args.queue else "--all-queues")
        return (f"--array {array} and {other} are two ways of choosing what to cancel: give the array, or the "
                f"{'jobs' if args.jobs else 'selection'}, not both")
    if args.jobs and many:
        return (f"jobs named ({named}) and {'--queue' if args.queue else '--all-queues'} are two ways of choosing "
                "what to cancel: give the jobs, or the selection, not both")
    if not args.jobs and not many and not array:
        return ("give jobs (ids, namespace/names or names), or --queue to cancel a queue's jobs, or --all-queues "
                "(with --owner, --name-prefix, --phase, -l) to cancel the jobs they take in every queue")
    filters = {"--phase": args.phase, "--owner": args.owner, "--name-prefix": args.name_prefix,
               "-l": args.selector is not None}
    given = " and ".join(flag for flag, on in filters.items() if on)
    if array and (given or args.yes):
        return (f"{given or '--yes'} {'select' if given else 'goes'} with --queue or --all-queues, not with --array: "
                "--array cancels every task of the array you may cancel")
    if args.jobs and given:
        return (f"{given} select among the jobs of --queue or --all-queues, not among jobs named ({named}): give "
                "the jobs, or the selection with --queue or --all-queues, not both")
    if args.jobs and args.yes:
        return f"--yes goes with --queue or --all-queues: jobs named ({named}) are cancelled without it"
    return ""


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--queue", default="", help="cancel every job of this queue you may see (with --phase, --owner); "
                                                "more than one only with --yes")
    c.add_argument("--phase", action="append", choices=ACTIVE_PHASES,
                   help="with --queue or --all-queues: only jobs in this phase (repeatable; default: every phase "
                        "not ended)")
    c.add_argument("--owner", default="", metavar="USER",
                   help="with --queue or --all-queues: only jobs this user submitted (USER in `get jobs -o wide`); "
                        "not --user, which picks the certificate you call with")
    c.add_argument("--all-queues", action="store_true",
                   help="cancel the matching jobs of every queue you may see (with --owner: all of theirs, "
                        "scancel -u); more than one only with --yes")
    c.add_argument("--name-prefix", default="", metavar="PREFIX",
                   help="with --queue or --all-queues: only jobs whose name starts with PREFIX (as get jobs "
                        "--name-prefix)")
    add_selector_argument(c, "with --queue or --all-queues: only jobs")
    c.add_argument("--yes", action="store_true", help="with --queue or --all-queues: cancel more than one job")


__all__ = ["ACTIVE_PHASES", "Selection", "Stopped", "Tally", "add_arguments", "cancel_each", "cancel_in_bulk",
           "matching", "run", "summary", "usage_problem"]
