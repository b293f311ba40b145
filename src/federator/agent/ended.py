"""The final phases the agent keeps, and when each was reached on the federator's clock (JobUpdate.ended_at).

Why a module of its own: a placement that ends while the federator is down or paused, or while this agent is cut
off from it, reaches the federator only in the next stream's re-sync; without its time the federator bills the
job to that re-sync (outside SRE QA F1: a 150 s federator pause billed 13 times the work).

An end is dated by the workload, not by when the agent noticed it: the backend says when the placement ended where
the member knows it (a simulated run's scheduled end; a pod's finishedAt, a Job's completionTime on Kubernetes:
`UpdateCallback` `ended_at`, on the member's wall clock). Dated at the agent's observation, a job that ended while
this agent was paused (SIGSTOP, a suspended VM, a long GC) or its member's API slow was billed to the agent's resume
(outside billing QA F9: 181.1 accelerator-seconds for a 120 accelerator-second job). `contact_end` takes that time
onto the contact clock (CLOCK_BOOTTIME, agent/fencing.py: it counts through a pause of this process) at the offset
between this host's wall clock and the contact clock now, bounded: never after the agent observed the end (a member
clock ahead), never before the agent saw the placement run (a member clock behind). Without one the end is when the
agent observed it.

The agent says the end on the federator's clock as estimated from the current stream's Welcome and Heartbeats
(`Contact.federator_now`): no synchronised clocks between member and federator needed, and the estimate errs early
by the transit time only (every federator_time is a lower bound), which a bill can bear. The federator
clamps what it is told anyway (server/end_times.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from federator.agent.fencing import Contact
from federator.model import JobPhase


@dataclass(frozen=True)
class Ended:
    """The final phase of a placement, kept after the backend forgets it (the member deleted its objects)."""

    phase: JobPhase
    message: str
    at: float  # on the contact clock


def contact_end(contact: Contact, workload_end: float | None, *, since: float) -> float:
    """When a placement ended, on the contact clock: `workload_end` (the backend's word, unix seconds on the member's
    wall clock; None: it does not know) converted at the wall/contact offset of now (`Contact.from_wall`), bounded to
    [`since` (when this agent saw the placement run, on the contact clock), now (when it observed the end)]; now
    without a workload end, or with one that is not a number."""
    now = contact.clock()
    if workload_end is None or not math.isfinite(workload_end):
        return now
    return min(now, max(contact.from_wall(workload_end), min(since, now)))


def on_federator_clock(contact: Contact, ended: Ended | None) -> float:
    """JobUpdate.ended_at for `ended`: its time on the federator's clock as this stream estimates it; 0 (not said)
    when there is no estimate (no Welcome yet) or no end is known (a placement ended before this agent started)."""
    if ended is None:
        return 0.0
    now = contact.said_now()  # never ahead: an end is never dated late (Contact.said_now)
    if now is None:
        return 0.0
    return max(0.0, now - (contact.clock() - ended.at))


__all__ = ["Ended", "contact_end", "on_federator_clock"]
