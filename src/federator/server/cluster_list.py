"""ClusterService.List: member clusters a page at a time, slim unless the caller asks for the detail.

Why: unpaged, ~250 clusters with big capacity reports made one answer of
~40 MB ("Sent message larger than max"), so `federator get clusters` failed for
everyone, and each call still cost seconds of the event loop converting every
room class and placement id of every cluster. Here a call's work is bounded by
its page: clusters in name order after the token, at most page_size of them
and at most `max_bytes` of answer (a page holds at least one cluster; a report
is within the message size limit, or the agent's stream would have refused
it). The default view (BASIC) carries what `get clusters` shows: totals, free
and quota held per pool, not the histograms, room classes and placement ids.

Placement ids name jobs (JOB.gGEN.CLUSTER), so the FULL view shows a caller
only the ids of jobs they may see (`security.authz`); an admin sees every one.

The answer is built in slices: the loop is given back between clusters once a
slice has run `SLICE_SECONDS`, and a FULL cluster (up to a whole report of room
classes, a third of a second of Python for 30,000 of them) is converted in a
worker thread (the capacity is a frozen value; the federator's short switch
interval, server/scheduling.py, gives the loop the interpreter back within a
fraction of a millisecond), so a caller listing in a loop cannot hold the
agents' streams (and their leases) behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from federator.api import convert
from federator.api.left_out import left_out_to_pb
from federator.api.v1 import agent_pb2, jobs_pb2
from federator.model import ClusterCapacity, Job
from federator.server.paging import TOKEN_PROBLEM, PageTokenError, decode_token, encode_token

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1_000
SLICE_SECONDS = 0.005
"""Work between two turns of the event loop while a page is built."""

BASIC = jobs_pb2.CLUSTER_VIEW_BASIC
FULL = jobs_pb2.CLUSTER_VIEW_FULL
VIEWS = {jobs_pb2.CLUSTER_VIEW_UNSPECIFIED: BASIC, BASIC: BASIC, FULL: FULL}


class ListRequestError(ValueError):
    """A field of ListClustersRequest that this server cannot take; the message starts with the field."""

    @property
    def field(self) -> str:
        return str(self).partition(":")[0]


@dataclass(frozen=True, slots=True)
class Request:
    """A checked ListClustersRequest."""

    size: int
    after: str | None
    view: int


CLUSTERS_BOUND = "clusters.list"  # every caller's pages are cut the same way (a provider's hold one cluster)


def _encode(name: str) -> str:
    return encode_token("c", name, bound=CLUSTERS_BOUND)


def _decode(token: str) -> str:
    try:
        values = decode_token(token, bound=CLUSTERS_BOUND)
    except PageTokenError as exc:
        raise ListRequestError(str(exc)) from exc
    if len(values) != 2 or values[0] != "c" or not isinstance(values[1], str):
        raise ListRequestError(TOKEN_PROBLEM)
    return values[1]


def checked(request: jobs_pb2.ListClustersRequest) -> Request:
    """The request's paging and view, or a ListRequestError naming the field."""
    if request.page_size < 0:
        raise ListRequestError(f"page_size: must not be negative, got {request.page_size}")
    if request.view not in VIEWS:
        raise ListRequestError(f"view: {request.view} is not a ClusterView (CLUSTER_VIEW_BASIC = 1, "
                               "CLUSTER_VIEW_FULL = 2; 0 reads as BASIC)")
    return Request(size=min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
                   after=_decode(request.page_token) if request.page_token else None, view=VIEWS[request.view])


def basic_capacity_pb(cap: ClusterCapacity) -> agent_pb2.CapacityReport:
    """What the BASIC view says of a capacity: per-pool totals, free, quota held and the largest node's devices, and
    the devices its agent left out (api/left_out.py); no histograms, no ids."""
    return agent_pb2.CapacityReport(
        sequence=cap.sequence,
        accelerator_pools=[
            agent_pb2.AcceleratorPool(
                accelerator_model=p.accelerator_model, total_accelerators=p.total_accelerators,
                allocatable_accelerators=p.allocatable_accelerators, free_accelerators=p.free_accelerators,
                sharing=p.sharing, unit_milli=p.unit_milli, vendor=p.vendor, memory_mib=p.memory_mib,
                resource_name=p.resource_name, family=p.family, quota_held_accelerators=p.quota_held_accelerators,
                largest_node_accelerators=p.largest_node_accelerators)
            for p in cap.accelerator_pools
        ],
        cpu_milli_allocatable=cap.cpu_milli_allocatable, cpu_milli_free=cap.cpu_milli_free,
        memory_bytes_allocatable=cap.memory_bytes_allocatable, memory_bytes_free=cap.memory_bytes_free,
        node_cpu_milli_free_max=cap.node_cpu_milli_free_max, node_memory_bytes_free_max=cap.node_memory_bytes_free_max,
        largest_node_cpu_milli=cap.largest_node_cpu_milli, largest_node_memory_bytes=cap.largest_node_memory_bytes,
        workload_kinds=sorted(cap.workload_kinds), left_out=left_out_to_pb(cap),
    )


def full_capacity_pb(cap: ClusterCapacity, shown: Callable[[str], bool]) -> agent_pb2.CapacityReport:
    """Everything of a capacity, but only the placement ids `shown` allows (they name jobs)."""
    pb = convert.capacity_to_pb(cap)
    ids = [pid for pid in pb.placement_ids if shown(pid)]
    del pb.placement_ids[:]
    pb.placement_ids.extend(ids)
    return pb


class Visibility:
    """Which placement ids a caller may see: those of jobs they may see, each job decided once per call."""

    def __init__(self, *, admin: bool, job_of: Callable[[str], Job | None], may_see: Callable[[Job], bool]) -> None:
        self._admin = admin
        self._job_of = job_of
        self._may_see = may_see
        self._decided: dict[str, bool] = {}

    def __call__(self, placement_id: str) -> bool:
        if self._admin:
            return True
        job = self._job_of(placement_id)
        if job is None:  # a stray the federator does not know: only an admin reads it
            return False
        seen = self._decided.get(job.job_id)
        if seen is None:
            seen = self._decided[job.job_id] = self._may_see(job)
        return seen


@dataclass(frozen=True, slots=True)
class Row:
    """One cluster as the federator holds it, before conversion."""

    status: jobs_pb2.ClusterStatus  # without capacity
    capacity: ClusterCapacity | None


def names_after(names: Iterable[str], after: str | None) -> list[str]:
    return sorted(n for n in names if after is None or n > after)


async def build_page(names: Sequence[str], *, request: Request, max_bytes: int,
                     row: Callable[[Sequence[str]], list[Row]], shown: Callable[[str], bool],
                     clock: Callable[[], float] = time.perf_counter) -> jobs_pb2.ListClustersResponse:
    """One page of the clusters `names` (sorted, after the token): `row` reads the state of the clusters it is
    given (called per slice, so a page reflects the federator as each slice ran), which are then converted to
    the view. Ends at `request.size` clusters or before `max_bytes`, whichever comes first."""
    out: list[jobs_pb2.ClusterStatus] = []
    used = 0
    started = clock()
    i = 0
    step = 16 if request.view == BASIC else 1
    while i < len(names) and len(out) < request.size:
        chunk = names[i:i + min(step, request.size - len(out))]
        i += len(chunk)
        for r in row(chunk):
            status = r.status
            if r.capacity is not None and request.view == BASIC:
                status.capacity.CopyFrom(basic_capacity_pb(r.capacity))
            elif r.capacity is not None:  # one report's room classes take a long time: off the loop
                status.capacity.CopyFrom(await asyncio.to_thread(full_capacity_pb, r.capacity, shown))
            size = status.ByteSize()
            if out and used + size > max_bytes:
                return jobs_pb2.ListClustersResponse(clusters=out, next_page_token=_encode(out[-1].name))
            out.append(status)
            used += size
        if clock() - started > SLICE_SECONDS:
            await asyncio.sleep(0)  # the loop serves the agents' streams between slices
            started = clock()
    more = i < len(names)
    return jobs_pb2.ListClustersResponse(clusters=out, next_page_token=_encode(out[-1].name) if more and out else "")


__all__ = ["BASIC", "DEFAULT_PAGE_SIZE", "FULL", "MAX_PAGE_SIZE", "ListRequestError", "Request", "Row", "Visibility",
           "basic_capacity_pb", "build_page", "checked", "full_capacity_pb", "names_after"]
