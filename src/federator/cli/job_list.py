"""`federator get jobs --phase --owner --namespace --name-prefix --since --array --sort`: List filtered by the
federator.

The CLI filtered client-side (and `cancel --queue --phase --owner` still does), fetching every job the caller may
see; the federator filters and orders now (ListJobsFilter, server/job_listing.py). Against a federator before
0.7.0, which ignores fields it does not know, the answer says so: such a server sets no applied_order, and a
filter field it does not know is missing from applied_filter. The CLI then filters and orders the pages itself,
so the same command gives the same jobs from either server (the older one slower). `--array` (filter.array_id,
0.16.0) is such a field: a federator of 0.15.0 lists every job, each with its spec.array, and the CLI keeps the
array's tasks (a federator before 0.15.0 has no arrays: none is kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.cli.times import FORMS, parse_time
from federator.model import Job, JobPhase
from federator.model.array import array_id_problem
from federator.model.label_selector import Selector, SelectorError, parse
from federator.server.job_listing import Query

PHASES = tuple(p.value for p in JobPhase)


def request_for(query: Query, *, page_size: int = 0, page_token: str = "") -> jobs_pb2.ListJobsRequest:
    """The ListJobsRequest asking the federator for `query`."""
    return jobs_pb2.ListJobsRequest(
        queue=query.queue, page_size=page_size, page_token=page_token,
        filter=jobs_pb2.ListJobsFilter(phases=[convert.phase_to_pb(p) for p in sorted(query.phases, key=PHASES.index)],
                                       owner=query.owner, namespace=query.namespace, name_prefix=query.name_prefix,
                                       submitted_since=query.submitted_since, array_id=query.array_id,
                                       label_selector=query.label_selector),
        order=jobs_pb2.LIST_ORDER_NEWEST_FIRST if query.newest_first else jobs_pb2.LIST_ORDER_UNSPECIFIED)


def applied(reply: jobs_pb2.ListJobsResponse, query: Query) -> bool:
    """Whether the federator applied all of `query` (it echoes what it applied; an older one echoes nothing)."""
    want_filter, want_order = query.applied()
    return reply.applied_order == want_order and reply.applied_filter == want_filter


def list_matching(call: Callable[[jobs_pb2.ListJobsRequest], jobs_pb2.ListJobsResponse], query: Query, *,
                  page_size: int = 0) -> list[Job]:
    """Every job of `query` the caller may see, a page at a time through `call` (a stub's List with its
    timeout); filtered and ordered here too where the federator did not (an older one)."""
    out: list[Job] = []
    token = ""
    everywhere = True
    while True:
        reply = call(request_for(query, page_size=page_size, page_token=token))
        everywhere = everywhere and applied(reply, query)
        out.extend(convert.job_from_pb(j) for j in reply.jobs)
        token = reply.next_page_token
        if not token:
            break
    if everywhere:
        return out
    kept = [j for j in out if query.takes(j)]
    return sorted(kept, key=lambda j: (j.submitted_at, j.job_id), reverse=query.newest_first)


def _since(text: str) -> float:
    """A time --since takes, as `usage` takes one (cli/times.py): local time unless it names a zone."""
    try:
        return parse_time(text, now=time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def array_id(text: str) -> str:
    """An array id --array takes, checked as the federator checks it (ListJobsFilter.array_id)."""
    problem = array_id_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: {problem}")
    return text


def label_selector(text: str) -> Selector:
    """A selector -l takes, checked as the federator checks it (ListJobsFilter.label_selector): kubectl's
    equality-based form (model/label_selector.py)."""
    try:
        return parse(text)
    except SelectorError as exc:
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: {exc}") from None


def add_selector_argument(p: argparse.ArgumentParser, what: str) -> None:
    """kubectl's -l, as `get jobs`, `watch` and `cancel` take it."""
    p.add_argument("-l", "--selector", default=None, metavar="SELECTOR", type=label_selector,
                   help=f"{what} whose labels (metadata.labels) match, as kubectl's -l: key=value, key!=value, key, "
                        "!key, joined by commas (all must hold); e.g. -l armada/job-set=js1")


def add_arguments(g: argparse.ArgumentParser) -> None:
    """`get jobs`' filters and order (--queue is `get`'s own)."""
    g.add_argument("--phase", action="append", choices=PHASES, default=[],
                   help="only jobs in this phase (repeatable: any of them)")
    g.add_argument("--owner", default="", metavar="USER",
                   help="only jobs this user submitted (USER in `get jobs -o wide`; among those you may see)")
    g.add_argument("--namespace", default="", help="only jobs of this namespace")
    g.add_argument("--name-prefix", default="", metavar="PREFIX", help="only jobs whose name starts with PREFIX")
    g.add_argument("--since", type=_since, default=0.0, metavar="TIME",
                   help=f"only jobs submitted at or after TIME: {FORMS}; in the local zone unless the time "
                        "names one (2026-12-05 is local midnight), as usage reads it")
    g.add_argument("--array", default=None, metavar="ARRAY_ID", type=array_id,
                   help="only the tasks of this array (the id `submit --array` printed), with a line counting them "
                        "by state under the table (Slurm's squeue -r -j ARRAY_ID)")
    add_selector_argument(g, "only jobs")
    g.add_argument("--sort", choices=["oldest", "newest"], default="oldest",
                   help="submission order, oldest first (default) or newest first. The federator filters and "
                        "orders; a federator before 0.7.0 does not, and the CLI then does it itself")


def filtered(args: argparse.Namespace) -> bool:
    """Whether any of these flags was given (they go with a list of jobs only)."""
    return bool(args.phase or args.owner or args.namespace or args.name_prefix or args.since or args.array
                or args.selector is not None or args.sort != "oldest")


def query_of_args(args: argparse.Namespace) -> Query:
    query = Query(queue=args.queue, phases=frozenset(JobPhase(p) for p in args.phase), owner=args.owner,
                 namespace=args.namespace, name_prefix=args.name_prefix, submitted_since=args.since,
                 newest_first=args.sort == "newest", array_id=args.array or "")
    return selected(query, args)


def selected(query: Query, args: argparse.Namespace) -> Query:
    """`query` with -l's selector (none given: any labels)."""
    chosen: Selector | None = args.selector
    if chosen is None or not chosen.requirements:
        return query
    return dataclasses.replace(query, label_selector=str(chosen), labels=chosen)


__all__ = ["PHASES", "add_arguments", "add_selector_argument", "applied", "array_id", "filtered", "label_selector",
           "list_matching", "query_of_args", "request_for", "selected"]
