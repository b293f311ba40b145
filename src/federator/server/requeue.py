"""A job queued again: its placements superseded at once, their CancelOrders sent once that is stored.

Why a module: the re-queue wrote with `GroupCommit.write` on the event loop, an fsync per job, and it is called
from the loop's busiest paths: a Lost cluster re-queues every job it ran (hundreds, one fsync each, in a row),
a drain a batch per turn, an agent's refusal or stopped placement one each. Every agent stream and every call
waited behind those fsyncs. Now the write is queued (`GroupCommit.write_then`) and the loop goes on; the news
waits for the disk:

- The job changes in memory at once, as before (Pending, its placements gone, a new generation next), so every
  later write of it (the cycle that places it again, a Cancel) holds the re-queue, and lands after it.
- Its CancelOrders, and its announcement to Watch, are sent once the write is durable: no agent hears of a
  re-queue the store does not hold. A cycle that places the job again meanwhile queues its write after this
  one, and sends its launch only once that is durable, so after these CancelOrders.
- A user's Cancel meanwhile is built from the job as re-queued (no live placement): the superseded placements'
  CancelOrders come from here, once stored.
- The store refusing the write (a full disk) leaves the job re-queued in memory, as before, and tells no agent:
  the job's next write stores it, and a member still running an old placement is told to stop by its next
  report (Orphans.cancel_strays). Raising stopped the loop.
- An agent's update for a superseded placement, heard before the write is durable, is answered with a Cancel
  (Orphans.fence_one), as after it: should the federator crash before the write, the store still holds the old
  placement, and the agent's re-sync (it no longer runs it) queues the job again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job, JobPhase, Reason
from federator.model.elastic_left import ElasticLeft
from federator.scheduler.elastic_regain import regain
from federator.server.clusters import forget_acks
from federator.server.orders import CancelOrder, Order
from federator.server.partial import supersede_part
from federator.server.restarts import count_restart
from federator.server.run_limits import paused

if TYPE_CHECKING:
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


def requeue(fed: Federator, job: Job, reason: Reason, *, ended: Collection[str] = (),
            stopped: Collection[str] = ()) -> None:
    """Supersede every placement of a job (`ended`: only those, of a spread job with others live:
    server/partial.py), queue it again; `stopped`: reported ended by their agent, sent no Cancel."""
    # Before the write below stores it (server/restarts.py), with the cluster of the placement its agent reported
    # ended, when one cluster's: what a restarted federator reads back (server/restored_cooldowns.py)
    reported = {p.cluster for p in job.placements if p.placement_id in stopped}
    count_restart(job, reason, at=fed.clock(), cluster=reported.pop() if len(reported) == 1 else "")
    job.elastic_left = left(job, fed.clock())  # the count it waits a while to regain (scheduler/elastic_regain.py)
    cancels = supersede_part(fed, job, ended, reason) if ended else None
    if cancels is None:
        cancels = supersede(fed, job, reason)
    cancels = [(c, o) for c, o in cancels if not (isinstance(o, CancelOrder) and o.placement_id in stopped)]
    fed.metrics.placement_retries.labels(reason.code.value).inc()

    def stored(error: BaseException | None) -> None:
        if error is None:
            for cluster, order in cancels:
                fed.send(cluster, order)
        else:
            log.warning("job %s requeued but not stored (%s); no agent is told yet", job.job_id, error)
        fed.notify([job])

    fed.journal.write_then([job], stored)  # durable before any agent hears of it; off the loop
    fed.wake()


def left(job: Job, at: float) -> ElasticLeft | None:
    """What an elastic gang ran at, and where, as its one placement ends under it: noted only above its minimum (at
    its minimum there is nothing less to settle for). A preemption does not come here: its room went to another."""
    if not job.spec.elastic or len(job.placements) != 1 or job.placements[0].replicas <= job.spec.min_replicas:
        return None
    return ElasticLeft(job.placements[0].cluster, job.placements[0].replicas, at)


def regained(fed: Federator, job: Job, avoid: tuple[str, ...], now: float) -> ElasticLeft | None:
    """`job.elastic_left` while the gang waits to regain its count this cycle (scheduler/elastic_regain.py), with
    what the rule reads of its member: its last report, none when it is Lost or gone."""
    left = job.elastic_left
    rec = fed.clusters.get(left.cluster) if left is not None else None
    reported = rec.last_report_at if rec is not None and rec.state is not ClusterState.LOST else None
    return regain(job.spec, left, now=now, reported_at=reported, avoided=avoid)


def supersede(fed: Federator, job: Job, reason: Reason) -> list[tuple[str, Order]]:
    """Put a job back to Pending with `reason`; the cancel orders for its live placements, to send once stored."""
    cancels: list[tuple[str, Order]] = [(p.cluster, CancelOrder(p.placement_id, f"superseded: {reason.message}"))
                                        for p in job.placements if not p.phase.is_terminal]
    forget_acks(fed.clusters, job.placements)
    fed.cycles.released(job, job.placements)
    fed.on_superseded(job.placements)  # the usage meter: each at its own end (`ended_at`; 0: now)
    # The time this attempt ran, to its placements' ends, counts toward spec.max_run_seconds (run_limits.py)
    paused(job, max((p.ended_at or fed.clock() for p in job.placements), default=fed.clock()))
    job.placements, job.message, job.phase, job.placed_at = [], "", JobPhase.PENDING, 0.0
    job.waiting_since = fed.clock()  # waiting again, from now (Job.waiting_since)
    job.pending_reason = reason
    fed.cycles.pending(job)
    fed.wanted_holds.requeued(fed, job)  # a spec.held: true refused while it ran holds it now (server/job_holds.py)
    return cancels


__all__ = ["left", "regained", "requeue", "supersede"]
