"""Usage records and the sums `federator usage` shows. Pure functions.

A usage record is one placement's hold on accelerators: how many (replicas x
accelerators per replica, fractions for shared devices) from when its member
cluster reported it Running until it ended (succeeded, failed, was cancelled,
preempted or re-placed). An open record (`end` None) is still running.

Amounts are summed as integers of micro-accelerator-seconds (1e-6), so the
sum over any grouping (by queue, user, cluster, ...) is *exactly* the total:
an invoice's lines add up to its total to the last digit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

MICRO = 1_000_000


class Dimension(StrEnum):
    """What usage can be grouped by: each a field of every record (`job`: its job_id). The Prometheus counter
    carries the `METRIC_DIMENSIONS` only; user, namespace and job are the usage API's (`federator usage --by
    user`); by job, so an organisation can reconcile a bill with the jobs it ran (outside billing QA F6)."""

    QUEUE = "queue"
    USER = "user"
    NAMESPACE = "namespace"
    CLUSTER = "cluster"
    PROVIDER = "provider"
    MODEL = "model"
    JOB = "job"
    REGION = "region"  # the cluster's region when the accelerators were used (the placement's), since 0.14.0
    VENDOR = "vendor"  # the model's vendor (nvidia, huawei, ...), since 0.14.0
    # one placement (its id: the job's id, generation and cluster), since 0.14.0: where a job re-queued or moved ran
    # each time, which the job's own record forgets (outside compliance QA, C3)
    PLACEMENT = "placement"


METRIC_DIMENSIONS = (Dimension.QUEUE, Dimension.CLUSTER, Dimension.PROVIDER, Dimension.MODEL, Dimension.REGION,
                     Dimension.VENDOR)
"""The labels of federator_accelerator_seconds_total. Not user and namespace: users choose namespaces, and each
label's own bound (200 values) does not bound their product; 3,000 short jobs of one user over 250 queues and
250 namespaces made 2,732 series (and as many _created). A cluster has one provider and a few models, so the
series are about queues x (cluster, model) pairs, and the meter caps them all the same (meter.SERIES_LIMIT).
Region and vendor (0.14.0, capacity planners QA P9) add no series: a cluster has one region and a model one vendor,
so they follow (cluster, model); they let Prometheus sum usage by province or vendor with no join on `cluster`,
which lost the region of a forgotten cluster's usage."""

KEY_SEPARATOR = " / "
"""Between the values of a row grouped by several dimensions, in `UsageRow.key` (for reading; `keys` has each)."""


@dataclass(frozen=True, slots=True)
class UsageRecord:
    placement_id: str
    job_id: str
    queue: str
    user: str
    namespace: str
    cluster: str
    provider: str
    model: str
    accelerators_milli: int  # replicas x accelerators per replica, in thousandths
    start: float  # unix seconds: reported Running
    end: float | None = None  # unix seconds: ended; None while running
    # Where and on what (0.14.0): the placement's region, the cluster's when it was placed, so a cluster moved or
    # forgotten since keeps its usage's region; and the model's vendor. "" on a record of 0.13.0 or older (or one a
    # rollback wrote): the usage API answers such a record's with the cluster's as known now (`known_where`).
    region: str = ""
    vendor: str = ""

    def key(self, by: Dimension) -> str:
        if by is Dimension.JOB:
            return self.job_id
        return self.placement_id if by is Dimension.PLACEMENT else str(getattr(self, by.value))

    def micro_seconds(self, *, since: float, until: float, now: float) -> int:
        """Micro-accelerator-seconds inside [since, until) (an open record runs to `now`)."""
        end = self.end if self.end is not None else now
        lo, hi = max(self.start, since), min(end, until)
        if hi <= lo:
            return 0
        # thousandths of an accelerator x milliseconds = micro-accelerator-seconds. The milliseconds are counted
        # from the record's start at both edges and subtracted, not the window's length rounded: [a, b) and
        # [b, c) then add up to [a, c) exactly (outside billing re-test N2: two halves lost 32,000 micro-units).
        return self.accelerators_milli * (round((hi - self.start) * 1000) - round((lo - self.start) * 1000))


@dataclass(frozen=True, slots=True)
class UsageRow:
    key: str  # the group's value ("" for the total of an ungrouped report); several: joined by KEY_SEPARATOR
    micro: int  # micro-accelerator-seconds
    placements: int
    keys: tuple[str, ...] = ()  # the group's value in each dimension grouped by, in their order

    @property
    def accelerator_seconds(self) -> float:
        return self.micro / MICRO


@dataclass(frozen=True, slots=True)
class UsageReport:
    since: float
    until: float
    by: tuple[Dimension, ...]  # () when not grouped
    rows: tuple[UsageRow, ...]  # biggest first; none when not grouped (the total is the answer)
    total: UsageRow


def summarize(records: Iterable[UsageRecord], *, since: float, until: float, now: float,
              by: Dimension | Sequence[Dimension] | None = None) -> UsageReport:
    """Usage inside [since, until), grouped by one dimension or several (a row per combination that used anything:
    `--by provider --by model`, capacity planners QA P9); each row and the total count placements that used
    anything in the window. Not grouped (`by` None or empty): no rows, the total only. A row repeating the total
    read as a group to a client adding rows and total (outside billing QA F4)."""
    dims: tuple[Dimension, ...] = () if by is None else (by,) if isinstance(by, Dimension) else tuple(by)
    micro: dict[tuple[str, ...], int] = defaultdict(int)
    count: dict[tuple[str, ...], int] = defaultdict(int)
    total = placements = 0
    for rec in records:
        amount = rec.micro_seconds(since=since, until=until, now=now)
        if amount <= 0:
            continue
        key = tuple(rec.key(d) for d in dims)
        micro[key] += amount
        count[key] += 1
        total += amount
        placements += 1
    rows = () if not dims else tuple(sorted((UsageRow(KEY_SEPARATOR.join(k), v, count[k], k)
                                             for k, v in micro.items()), key=lambda r: (-r.micro, r.keys)))
    return UsageReport(since, until, dims, rows, UsageRow("", total, placements))


def known_where(records: Iterable[UsageRecord], *, region_of: Callable[[str], str],
                vendor_of: Callable[[str, str], str]) -> list[UsageRecord]:
    """The records, each with a region and vendor: a record written before 0.14.0 kept neither, and is given its
    cluster's region as known now (`region_of(cluster)`, "" for a cluster no longer known) and its model's vendor
    (`vendor_of(cluster, model)`, ""  when not known). A record that kept them keeps its own."""
    out = []
    for r in records:
        if r.region and r.vendor:
            out.append(r)
            continue
        out.append(replace(r, region=r.region or region_of(r.cluster),
                           vendor=r.vendor or vendor_of(r.cluster, r.model)))
    return out


__all__ = ["KEY_SEPARATOR", "METRIC_DIMENSIONS", "MICRO", "Dimension", "UsageRecord", "UsageReport", "UsageRow",
           "known_where", "summarize"]
