"""The federator's state metrics, read at scrape time: clusters, jobs and queues as they are now.

Why a module of its own: the event metrics (metrics.py) are counted where things happen; these are sampled whole
when Prometheus scrapes, from the federator's state, on its event loop (`StateCollector`), so they never go stale
nor keep label sets of clusters that are gone. The sample's shape (`StateSample`, `ClusterSample`, filled by
server/state_sample.py) and the families it becomes are one concern, which was more than a third of metrics.py.
Its labels are bounded as the event metrics' are (`queue_label`: metrics.BoundedLabel), summed when folded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass(frozen=True, slots=True)
class ClusterSample:
    cluster: str
    region: str
    state: str  # Ready, Partitioned, Lost
    connected: bool
    report_age_seconds: float | None  # None: no report known (a cluster awaited after a restart, not yet heard)
    # (vendor, model, state) -> whole-device equivalents (a MIG partition its share: 0.125 for a 1g.10gb)
    accelerators: dict[tuple[str, str, str], float] = field(default_factory=dict)
    cpu_milli: dict[str, int] = field(default_factory=dict)  # state -> milli-cores
    quarantined: bool = False  # no new work for a while: it failed several owners' work early
    cordoned: bool = False  # no new work until an operator uncordons it (server/cordons.py)
    cordoned_since: float = 0.0  # when that cordon began (Unix seconds; 0: not cordoned)
    certificate_not_after: float = 0.0  # its agent's client certificate, as last presented (0: none seen)
    drain_jobs_left: int = 0  # jobs an admin's drain has yet to move off it; 0 with no drain (server/drains.py)
    # (resource, reason) -> devices its agent sees but does not offer (agent.proto LeftOutDevices); at most 64 pairs
    left_out: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StateSample:
    clusters: list[ClusterSample]
    jobs: dict[tuple[str, str], int]  # (queue, phase) -> count
    pending: dict[tuple[str, str], int]  # (queue, reason code) -> count
    queue_accelerators: dict[str, float] = field(
        default_factory=dict
    )  # queue -> accelerators held by Placed/Running jobs
    # queue -> its oldest pending job's age, seconds, of the jobs that may yet run (not `Reason.never`)
    oldest_pending: dict[str, float] = field(default_factory=dict)
    # queue -> replicas owed to Placed/Running jobs short of them (one part of a spread job ended: server/partial.py)
    replicas_waiting: dict[str, int] = field(default_factory=dict)
    # queue -> replicas its Running inference jobs asked for and do not serve with: owed, pending or refused on a
    # member, or running but not ready (JobUpdate.replicas_running/replicas_ready; outside QA F2)
    replicas_short: dict[str, int] = field(default_factory=dict)
    # queue -> its policy weight, and its weighted fair share of the Ready fleet's accelerators among the queues
    # with work (scheduler/standing.py; tenant QA F4): a starving queue holds less than its share with jobs pending
    queue_weight: dict[str, float] = field(default_factory=dict)
    queue_fair_share: dict[str, float] = field(default_factory=dict)
    # (queue, why) -> its pending jobs the scheduler judged can never run as asked (`Reason.never`, why its
    # `NeverRunnable`: more than the whole quota, or than the fleet could hold even empty); left out of
    # oldest_pending (outside QA, ops F9; outside SRE QA, F11)
    never_runnable: dict[tuple[str, str], int] = field(default_factory=dict)
    # (vendor, model) -> accelerators the pending jobs ask for, whole-device equivalents (server/pending_demand.py;
    # outside planners' QA, P3): demand in the unit and labels of federator_cluster_accelerators' supply
    pending_accelerators: dict[tuple[str, str], float] = field(default_factory=dict)
    # queue -> its unfinished jobs with a live placement outside the regions its allowedRegions (narrowed since)
    # and their spec.regions.allowed allow (server/outside_regions.py; outside compliance QA, C1)
    outside_regions: dict[str, int] = field(default_factory=dict)
    # (queue, vendor) -> what `queue_accelerators` holds, by the vendor of the pools its placements hold (a queue
    # holding nothing: one key of vendor NO_VENDOR, 0): federator_queue_accelerators' labels, so the dashboard's
    # `vendor` variable filters a queue's holding as it filters the fleet it is a share of (vendqa61 V9's rest)
    queue_vendor_accelerators: dict[tuple[str, str], float] = field(default_factory=dict)


CLUSTER_STATES = ("Ready", "Partitioned", "Lost")
NO_VENDOR = "none"  # federator_queue_accelerators' vendor for a queue that holds no accelerator


SAMPLE_TIMEOUT_SECONDS = 30.0


class StateCollector(Collector):
    """Reads the federator's state at scrape time, on the federator's event loop.

    Why on the loop: the scrape comes on the HTTP server's thread, and the
    state (jobs, clusters, the cycle's indexes) is changed by the loop without
    locks; walking it from another thread can meet a dict changing size. The
    sample is run as one loop callback and the scrape waits for it."""

    def __init__(self, sample: Callable[[], StateSample],
                 loop: Callable[[], asyncio.AbstractEventLoop | None] = lambda: None, *,
                 queue_label: Callable[[str], str] = lambda queue: queue) -> None:
        self._sample = sample
        self._loop = loop
        self._queue = queue_label

    def read(self) -> StateSample:
        loop = self._loop()
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return self._sample()  # no loop (tests, the simulator), or already on it
        done: concurrent.futures.Future[StateSample] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(self._sample())
            except BaseException as exc:  # noqa: BLE001 - handed to the scraping thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=SAMPLE_TIMEOUT_SECONDS)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.read()
        connected = GaugeMetricFamily("federator_clusters_connected", "Member clusters with a live agent stream.")
        connected.add_metric([], sum(1 for c in s.clusters if c.connected))
        yield connected

        link = GaugeMetricFamily("federator_cluster_connected",
                                 "1 if the member cluster's agent has a live stream to this federator, else 0.",
                                 labels=["cluster", "region"])
        for c in s.clusters:
            link.add_metric([c.cluster, c.region], 1.0 if c.connected else 0.0)
        yield link

        state = GaugeMetricFamily("federator_cluster_state",
                                  "1 for the state each member cluster is in (Ready, Partitioned, Lost).",
                                  labels=["cluster", "region", "state"])
        age = GaugeMetricFamily("federator_agent_report_age_seconds",
                                "Seconds since the cluster's agent last reported capacity.",
                                labels=["cluster", "region"])
        accelerators = GaugeMetricFamily("federator_cluster_accelerators",
                                         "Accelerators of a member cluster by vendor, model and state "
                                         "(total, allocatable, free, reserved, quota_held: free but held "
                                         "back by the member's own queue quota), in whole-device equivalents: "
                                         "a MIG partition counts as its share of a device (1g.10gb 0.125).",
                                         labels=["cluster", "region", "vendor", "model", "state"])
        cpu = GaugeMetricFamily("federator_cluster_cpu_cores",
                                "CPU cores of a member cluster by state (allocatable, free).",
                                labels=["cluster", "region", "state"])
        for c in s.clusters:
            for st in CLUSTER_STATES:
                state.add_metric([c.cluster, c.region, st], 1.0 if c.state == st else 0.0)
            if c.report_age_seconds is not None:  # "now - 0" read as 57 years for every cluster after a restart
                age.add_metric([c.cluster, c.region], c.report_age_seconds)
            for (vendor, model, astate), n in sorted(c.accelerators.items()):
                accelerators.add_metric([c.cluster, c.region, vendor, model, astate], n)
            for cstate, milli in sorted(c.cpu_milli.items()):
                cpu.add_metric([c.cluster, c.region, cstate], milli / 1000)
        yield state
        quarantined = GaugeMetricFamily("federator_cluster_quarantined",
                                        "1 while the member cluster is quarantined (it failed several owners' "
                                        "placements soon after they started: no new work for --quarantine-seconds; "
                                        "what it runs stays), else 0.", labels=["cluster", "region"])
        for c in s.clusters:
            quarantined.add_metric([c.cluster, c.region], 1.0 if c.quarantined else 0.0)
        yield quarantined
        cordoned = GaugeMetricFamily("federator_cluster_cordoned",
                                     "1 while an operator has cordoned the member cluster (federator cordon: no "
                                     "new work until uncordoned; what it runs stays), else 0.",
                                     labels=["cluster", "region"])
        for c in s.clusters:
            cordoned.add_metric([c.cluster, c.region], 1.0 if c.cordoned else 0.0)
        yield cordoned
        since = GaugeMetricFamily("federator_cluster_cordoned_since_timestamp_seconds",
                                  "When the cordon on the member cluster began (Unix seconds; an admin's cordon or "
                                  "drain, or its provider's maintenance, the earlier): kept across restarts for an "
                                  "admin's. No series for a cluster not cordoned.", labels=["cluster", "region"])
        for c in s.clusters:
            if c.cordoned and c.cordoned_since > 0:
                since.add_metric([c.cluster, c.region], c.cordoned_since)
        yield since
        expiry = GaugeMetricFamily("federator_cluster_certificate_expiration_timestamp_seconds",
                                   "When the client certificate the member cluster's agent last presented expires "
                                   "(notAfter, Unix seconds); no series until its agent connects to this federator.",
                                   labels=["cluster", "region"])
        for c in s.clusters:
            if c.certificate_not_after > 0:
                expiry.add_metric([c.cluster, c.region], c.certificate_not_after)
        yield expiry
        draining = GaugeMetricFamily("federator_cluster_drain_jobs_left",
                                     "Jobs with a placement on the member cluster that an admin's drain (federator "
                                     "drain) has yet to requeue elsewhere; 0 when drained, or when no drain holds.",
                                     labels=["cluster", "region"])
        for c in s.clusters:
            draining.add_metric([c.cluster, c.region], float(c.drain_jobs_left))
        yield draining
        left_out = GaugeMetricFamily("federator_cluster_left_out_accelerators",
                                     "Devices the member cluster's agent sees but does not offer, by resource and "
                                     "reason (unlabelled: no node label names their model; unsupported: units "
                                     "that are not chips, such as Ascend vNPUs), as its latest report says; no "
                                     "series when none are left out.",
                                     labels=["cluster", "region", "resource", "reason"])
        for c in s.clusters:
            for (resource, why), n in sorted(c.left_out.items()):
                left_out.add_metric([c.cluster, c.region, resource, why], float(n))
        yield left_out
        yield age
        yield accelerators
        yield cpu

        jobs = GaugeMetricFamily("federator_jobs", "Jobs by queue and phase.", labels=["queue", "phase"])
        for key, count in sorted(_fold(self._queue, s.jobs).items()):
            jobs.add_metric(list(key), count)
        yield jobs
        pending = GaugeMetricFamily("federator_pending_jobs", "Pending jobs by queue and the reason they wait.",
                                    labels=["queue", "reason"])
        for key, count in sorted(_fold(self._queue, s.pending).items()):
            pending.add_metric(list(key), count)
        yield pending
        share = GaugeMetricFamily(
            "federator_queue_accelerators",
            "Accelerators held by each queue's placed and running jobs, by the vendor of the pools they hold, a "
            f"partition at its worth (MIG 1g.10gb: 0.125); a queue holding nothing: vendor {NO_VENDOR}, 0.",
            labels=["queue", "vendor"],
        )
        for key, held in sorted(_fold(self._queue, s.queue_vendor_accelerators).items()):
            share.add_metric(list(key), held)
        yield share
        # One series per queue each (1,000 queues: 2,000 series; past the queue label's budget the rest fold into
        # `other`, their weights and shares summed, as federator_queue_accelerators' holdings are).
        for name, doc, values in (
                ("federator_queue_weight", "Each queue's weight in the scheduling policy (its fair-share weight).",
                 s.queue_weight),
                ("federator_queue_fair_share", "Each queue's weighted fair share, in accelerators: its weight over the "
                 "weights of the queues with running or pending work, times the Ready fleet's accelerators (an "
                 "idle queue's: what it would get were it to ask now).", s.queue_fair_share)):
            gauge = GaugeMetricFamily(name, doc, labels=["queue"])
            for key, v in sorted(_fold(self._queue, {(q,): v for q, v in values.items()}).items()):
                gauge.add_metric(list(key), v)
            yield gauge
        oldest = GaugeMetricFamily(
            "federator_oldest_pending_job_age_seconds",
            "Seconds since the oldest pending job of each queue was submitted (queues with pending jobs only), of "
            "the jobs that may yet run: one judged never runnable (federator_never_runnable_jobs) is left out.",
            labels=["queue"],
        )
        ages: dict[str, float] = {}
        for queue, waited in s.oldest_pending.items():  # a folded queue's age is the oldest among those folded
            shown = self._queue(queue)
            ages[shown] = max(waited, ages.get(shown, 0.0))
        for shown, waited in sorted(ages.items()):
            oldest.add_metric([shown], waited)
        yield oldest
        never = GaugeMetricFamily(
            "federator_never_runnable_jobs",
            "Pending jobs of each queue the scheduler judged can never run as asked, by reason: quota (more than "
            "the queue's whole quota on every way they may run; shrink them, or the quota grows) or fleet (more "
            "than any member cluster could hold even empty; shrink them, or a larger member joins). Queues with "
            "such jobs only.",
            labels=["queue", "reason"],
        )
        for key, n in sorted(_fold(self._queue, dict(s.never_runnable)).items()):
            never.add_metric(list(key), n)
        yield never
        outside = GaugeMetricFamily(
            "federator_jobs_outside_allowed_regions",
            "Unfinished jobs of each queue with a replica running in a region its queue's allowedRegions no longer "
            "allows (the fence narrowed while they ran: they run on, and are never placed there again). Queues "
            "with such jobs only.",
            labels=["queue"],
        )
        for key, n in sorted(_fold(self._queue, {(q,): n for q, n in s.outside_regions.items()}).items()):
            outside.add_metric(list(key), n)
        yield outside
        wanted = GaugeMetricFamily(
            "federator_pending_accelerators",
            "Accelerators the pending jobs ask for (replicas x per replica), by vendor and model, in whole-device "
            "equivalents as federator_cluster_accelerators counts supply (a MIG partition asked by name at its "
            "share). A job open to several models, or to any, is model \"any\"; a model or vendor no member "
            "reports is \"other\". Each job counts its preferred alternative once; jobs judged never runnable "
            "count too (federator_never_runnable_jobs says how many).",
            labels=["vendor", "model"],
        )
        for (vendor, model), n in sorted(s.pending_accelerators.items()):
            wanted.add_metric([vendor, model], n)
        yield wanted
        short = GaugeMetricFamily(
            "federator_replicas_waiting",
            "Replicas owed to each queue's placed and running jobs that serve with fewer than they asked for (a "
            "cluster with part of a spread job was lost, refused or stopped it).",
            labels=["queue"],
        )
        for key, owed in sorted(_fold(self._queue, {(q,): v for q, v in s.replicas_waiting.items()}).items()):
            short.add_metric(list(key), owed)
        yield short
        # Per queue, never per job (the queue label's budget bounds it): `federator get jobs --queue Q -o wide`
        # names the jobs (RUNNING/READY "2/4") and each one's message says why.
        unserved = GaugeMetricFamily(
            "federator_replicas_short",
            "Replicas each queue's running inference jobs asked for and do not serve with: owed (not placed), "
            "pending or refused on a member, or running but not ready.",
            labels=["queue"],
        )
        for key, missing in sorted(_fold(self._queue, {(q,): v for q, v in s.replicas_short.items()}).items()):
            unserved.add_metric(list(key), missing)
        yield unserved


def _fold(bound: Callable[[str], str], counts: Mapping[Any, float]) -> dict[tuple[str, ...], float]:
    """Counts by (queue, ...) with the queue bounded: the queues folded into OTHER are summed."""
    folded: dict[tuple[str, ...], float] = defaultdict(float)
    for (queue, *rest), n in counts.items():
        folded[(bound(queue), *rest)] += n
    return dict(folded)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["CLUSTER_STATES", "NO_VENDOR", "SAMPLE_TIMEOUT_SECONDS", "ClusterSample", "StateCollector", "StateSample"]
