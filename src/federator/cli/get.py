"""`federator get jobs | job | clusters`, and the calls it makes: every job or cluster a page at a time, or one
job by one Get (the Python client API of listing: `list_jobs`, `get_job`, `list_clusters`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.cli import calls, job_list
from federator.cli.arg_types import whole
from federator.cli.array_tasks import counts_line
from federator.cli.calls import Target
from federator.cli.certs import client_options
from federator.cli.cluster_view import summary_from_pb
from federator.cli.exit_codes import Exit
from federator.cli.job_document import job_document
from federator.cli.output import cluster_rows, dump, job_rows, table
from federator.cli.placement_asks import asked_lines
from federator.model import Job
from federator.model.pod_sets import described
from federator.security.tls import TlsError
from federator.server.job_listing import Query
from federator.server.paging import MAX_PAGE_SIZE

page_size = whole("a number of jobs", 1, MAX_PAGE_SIZE)  # the federator serves at most this; more overflowed int32


def list_jobs(target: Target, queue: str = "", *, page_size: int = 0, query: Query | None = None) -> list[Job]:
    """Every job (of `queue`, or of `query`), fetched a page at a time (a page is bounded in jobs and bytes by
    the server), filtered and ordered by the federator (cli/job_list.py)."""
    with calls.connect(target) as (jobs, _):
        return job_list.list_matching(lambda request: jobs.List(request, timeout=calls.CALL_TIMEOUT),
                                      query or Query(queue=queue), page_size=page_size)


def get_job(target: Target, key: str) -> Job | None:
    """One job by id, or the newest of that name the caller may see (GetJobRequest.job_id); None if there is
    none. One Get: never a List of every job, which at a national backlog was dozens of pages and seconds."""
    with calls.connect(target) as (jobs, _):
        try:
            reply = jobs.Get(jobs_pb2.GetJobRequest(job_id=key), timeout=calls.CALL_TIMEOUT)
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise
    return convert.job_from_pb(reply)


def list_clusters(target: Target, *, full: bool = True, page_size: int = 0) -> list[dict[str, Any]]:
    """Every member cluster, fetched a page at a time. `full`: the scheduling detail too (CLUSTER_VIEW_FULL),
    its capacity a ClusterCapacity; else the BASIC view, its capacity a CapacitySummary (what tables show)."""
    view = jobs_pb2.CLUSTER_VIEW_FULL if full else jobs_pb2.CLUSTER_VIEW_BASIC
    out: list[dict[str, Any]] = []
    token = ""
    with calls.connect(target) as (_, clusters):
        while True:
            resp = clusters.List(jobs_pb2.ListClustersRequest(page_size=page_size, page_token=token, view=view),
                                 timeout=calls.CALL_TIMEOUT)
            for c in resp.clusters:
                cap: Any = None
                if c.HasField("capacity"):
                    cap = convert.capacity_from_pb(c.capacity) if full else summary_from_pb(c.capacity)
                out.append({"name": c.name, "region": c.region, "state": c.state, "labels": dict(c.labels),
                            "capacity": cap, "last_report_at": c.last_report_at, "placements": c.placements,
                            "gang_admission": c.gang_admission, "quarantined_until": c.quarantined_until,
                            "quarantine_reason": c.quarantine_reason, "cordoned": c.cordoned,
                            "cordoned_by": c.cordoned_by, "cordoned_at": c.cordoned_at,
                            "cordon_reason": c.cordon_reason, "member_unreachable": c.member_unreachable,
                            "member_unreachable_since": c.member_unreachable_since,
                            "report_age_seconds": c.report_age_seconds, "duplicate_agent": c.duplicate_agent,
                            "over_bound": c.over_bound, "draining": c.draining, "drain_jobs_left": c.drain_jobs_left,
                            "maintenance": c.maintenance, "maintenance_since": c.maintenance_since,
                            "reports_refused": c.reports_refused,
                            "reports_refused_since": c.reports_refused_since,
                            "window_from": c.window_from, "window_until": c.window_until,
                            "orphan_placements": c.orphan_placements})
            token = resp.next_page_token
            if not token:
                return out


def run(args: argparse.Namespace) -> int:
    if (args.what == "clusters" or args.name) and job_list.filtered(args):
        print("error: --phase, --owner, --namespace, --name-prefix, --since, --array, -l and --sort go with `get jobs` "
              "without a job name", file=sys.stderr)
        return 2
    try:
        if args.what == "clusters":
            # documents carry the histograms (nodes_by_free); a table needs only the BASIC view
            clusters = list_clusters(client_options(args), full=args.output in ("json", "yaml"),
                                     page_size=args.page_size)
            if args.name:  # one cluster, as `get jobs NAME` is one job
                clusters = [c for c in clusters if c["name"] == args.name]
                if not clusters:
                    print(f"error: no cluster {args.name!r}", file=sys.stderr)
                    return Exit.NOT_FOUND
            if args.output in ("json", "yaml"):
                docs = [{**c, "capacity": capacity_document(c["capacity"])} for c in clusters]
                print(dump(docs, args.output))
            else:
                print(table(*cluster_rows(clusters, wide=args.output == "wide")))
            return 0
        if args.name:
            job = get_job(client_options(args), args.name)
            if job is None or (args.queue and job.spec.queue != args.queue):
                print(f"error: no job {args.name!r}" + (f" in queue {args.queue!r}" if args.queue else ""),
                      file=sys.stderr)
                return Exit.NOT_FOUND
            jobs = [job]
        else:
            jobs = list_jobs(client_options(args), page_size=args.page_size, query=job_list.query_of_args(args))
    except (grpc.RpcError, TlsError) as err:
        return calls.fail(err, args)
    narrowed = bool(args.phase or args.owner or args.namespace or args.name_prefix or args.since or args.queue)
    if args.array and not jobs and not narrowed:  # squeue's "Invalid job id specified"
        print(f"error: no task of array {args.array!r} that you may see (its id as `submit --array` printed it; "
              "tasks removed after they ended are not listed)", file=sys.stderr)
        return Exit.NOT_FOUND
    if args.output in ("json", "yaml"):
        # FederatedJob documents (cli/job_document.py): one job's may be edited and submitted again as it is;
        # several are a YAML stream (`submit -f` takes it too) or a JSON list
        docs = [job_document(j) for j in jobs]
        print(dump(docs[0] if args.name else docs, args.output, stream=not args.name))
    else:
        print(table(*job_rows(jobs, wide=args.output == "wide")))
        if args.name:  # where a job with spec.regions.weights or spec.prefer went, and why (cli/placement_asks.py)
            for line in asked_lines(jobs[0], _clusters_if_listed(args) if jobs[0].spec.prefer else None):
                print(line)
            if jobs[0].spec.pod_sets:  # a gang of unequal roles, held and billed at what each asks (model/pod_sets.py)
                print(f"pod sets: {described(jobs[0].spec.pod_sets)}, one cluster, one model")
        if args.array:  # how far along the array is (cli/array_tasks.py)
            print(counts_line(args.array, jobs, filtered=narrowed))
    return 0


def _clusters_if_listed(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    """The member clusters, or None when this caller may not list them (the job's lines then say so)."""
    try:
        return list_clusters(client_options(args), full=False)
    except (grpc.RpcError, TlsError):
        return None


def capacity_document(cap: Any) -> Any:
    if cap is None:
        return None
    return {
        "accelerator_pools": [
            {
                "vendor": p.vendor,
                "accelerator_model": p.accelerator_model,
                "nodes_by_free": list(p.nodes_by_free),
                "total_accelerators": p.total_accelerators,
                "free_accelerators": p.free_accelerators,
                "quota_held_accelerators": p.quota_held_accelerators,
                # The counts above are the pool's own units: a MIG pool's partitions, each worth unit_milli.
                "sharing": p.sharing,
                "unit_milli": p.unit_milli,
                # what `sim --fleet` reads of today's fleet (simulate/live_fleet.py): 0 = not said
                "memory_mib": p.memory_mib,
                "largest_node_accelerators": p.largest_node_accelerators,
            }
            for p in cap.accelerator_pools
        ],
        "cpu_milli_free": cap.cpu_milli_free,
        "cpu_milli_allocatable": cap.cpu_milli_allocatable,
        "memory_bytes_free": cap.memory_bytes_free,
        "memory_bytes_allocatable": cap.memory_bytes_allocatable,
        "workload_kinds": sorted(cap.workload_kinds),
        # devices its agent sees but does not offer, and why (agent.proto LeftOutDevices)
        "left_out": [{"resource_name": r, "reason": why, "devices": n} for r, why, n in cap.left_out],
    }


__all__ = ["capacity_document", "get_job", "list_clusters", "list_jobs", "page_size", "run"]
