"""A queue's standing against its weighted fair share, in accelerators: what tenants read in a pending reason
and SREs in `federator_queue_fair_share`.

Why: the cycle orders queues by weighted dominant share (fairshare.FairOrder), but a tenant over its share only
read "InsufficientAccelerators: 0/1 clusters fit ...", and an SRE had no number to tell a starving organisation
from a hogging one (tenant QA F2, F4). Both read the same figures from here, so the reason and the metric agree;
the reason tells them as ranges (told_counts.py), so that each job the queue starts or ends does not reword, and
in Kubernetes mode PATCH, every waiting job of the queue (kubescaleqa62 H1, M2).

The fair share in accelerators is the queue's weight over the weights of the queues that want resources
(those with running or pending work, as `QueueUsage.fair_share`), times the accelerators of the Ready fleet.
The scheduler itself compares dominant shares over accelerators, CPU and memory; for the accelerator-bound
work this federator schedules the two agree, and an accelerator count is what a tenant can act on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from federator.model import MILLI, JobId, Reason, ReasonCode
from federator.scheduler.config import SchedulerConfig
from federator.scheduler.fairshare import QueueUsage, accelerator_dim
from federator.scheduler.framework import PlacementRequest
from federator.scheduler.snapshot import Snapshot
from federator.scheduler.told_counts import amount

ACCELERATOR_DIM = accelerator_dim("")  # every model's dimension starts so


def accelerators_held(usage: QueueUsage, queue: str) -> float:
    """Accelerators `queue` holds now (fractions count as such), every model together."""
    return sum(v for d, v in usage.used.get(queue, {}).items() if d.startswith(ACCELERATOR_DIM)) / MILLI


def fleet_accelerators(usage: QueueUsage) -> float:
    return sum(v for d, v in usage.totals.items() if d.startswith(ACCELERATOR_DIM)) / MILLI


def fair_accelerators(usage: QueueUsage, queue: str, active: Iterable[str]) -> float:
    """`queue`'s weighted fair share of the fleet's accelerators among the `active` queues."""
    return usage.fair_share(queue, active) * fleet_accelerators(usage)


def standing_note(usage: QueueUsage, queue: str, active: Iterable[str]) -> str | None:
    """What a pending job of `queue` adds to its reason when its queue holds at least its fair share (None when
    not: then the queue already goes first; None too when no other queue has work: then the share is the whole
    fleet, and the order among queues is nothing to the job). Bounded: a queue name and two numbers, told as
    ranges (told_counts.py: "holds 10 to 19 accelerators; its weighted fair share now is 10 to 19"), so that each
    job the queue starts or ends does not reword all its waiting jobs' stored reasons."""
    if not set(active) - {queue}:
        return None
    held = accelerators_held(usage, queue)
    fair = fair_accelerators(usage, queue, active)
    if held <= 0 or held < fair:
        return None
    return (f"queue {queue} holds {amount(held)} accelerators; its weighted fair share now is {amount(fair)}; "
            "queues further under their share go first")


# The reasons that say the job waits for room (not for its quota, a reservation, a region or a kind of cluster):
# only there does "nothing in its way is preemptible" explain the wait.
ROOM = frozenset({ReasonCode.INSUFFICIENT_ACCELERATORS, ReasonCode.GANG_DOES_NOT_FIT, ReasonCode.INSUFFICIENT_CPU,
                  ReasonCode.INSUFFICIENT_MEMORY})


def under_share_note(usage: QueueUsage, queue: str, active: Iterable[str]) -> str | None:
    """What a pending job of `queue` adds to its reason when its queue is under its fair share and no running work
    is the job's to stop (None when the queue is not under its share, or no other queue has work).

    Why: under its share a queue's jobs may preempt other queues' preemptible work, and their reason says why no
    such preemption helped ("not preempting: ...", preemption.capped), but only where some preemptible work ran.
    Behind non-preemptible work alone a starving organisation read the bare "no node with 1 free accelerator",
    the same words an over-share one reads (outside re-test, F2's remainder)."""
    if not set(active) - {queue}:
        return None
    held = accelerators_held(usage, queue)
    fair = fair_accelerators(usage, queue, active)
    if held >= fair:
        return None
    return (f"queue {queue} holds {amount(held)} accelerators, under its weighted fair share of {amount(fair)}; "
            "not preempting: the work in its way is not preemptible (or is of a higher priority)")


def with_standing(pending: dict[JobId, Reason], waiting: Iterable[PlacementRequest], usage: QueueUsage,
                  active: Iterable[str], *, unstoppable: Collection[JobId] = ()) -> None:
    """Append its queue's standing to each waiting job's reason, once per queue computed: `standing_note` for a
    queue at or over its share, `under_share_note` for a job of a queue under it that had nothing to stop
    (`unstoppable`, the preemption phase's) and waits for room."""
    active = list(active)
    notes: dict[str, str | None] = {}
    under: dict[str, str | None] = {}
    for request in waiting:
        said = pending.get(request.job_id)
        if said is None:
            continue
        q = request.spec.queue
        if q not in notes:
            notes[q] = standing_note(usage, q, active)
        note = notes[q]
        if note is None and request.job_id in unstoppable and said.code in ROOM:
            if q not in under:
                under[q] = under_share_note(usage, q, active)
            note = under[q]
        if note is not None:
            pending[request.job_id] = Reason(said.code, f"{said.message}; {note}")


def fleet_of(snapshot: Snapshot) -> float:
    """The Ready fleet's allocatable accelerators, as `QueueUsage` totals them."""
    return float(sum(p.allocatable_accelerators for c in snapshot.ready() for p in c.capacity.accelerator_pools))


def fair_shares(config: SchedulerConfig, queues: Iterable[str], active: Iterable[str], fleet: float
                ) -> dict[str, float]:
    """Each of `queues`' weighted fair share in accelerators among the `active` ones (`QueueUsage.fair_share`:
    an idle queue's is what it would get were it to ask now), for `federator_queue_fair_share`."""
    active = set(active)
    total = sum(config.queue(q).weight for q in active)
    out = {}
    for q in queues:
        w = config.queue(q).weight
        whole = total if q in active else total + w
        out[q] = w / whole * fleet if whole else fleet
    return out
