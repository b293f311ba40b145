"""The final phases the agent keeps, and when each was reached on the federator's clock (JobUpdate.ended_at).

Why a module of its own: a placement that ends while the federator is down or paused, or while this agent is cut
off from it, reaches the federator only in the next stream's re-sync; without its time the federator bills the
job to that re-sync (outside SRE QA F1: a 150 s federator pause billed 13 times the work). The agent notes each end
on its contact clock (CLOCK_BOOTTIME, agent/fencing.py: it counts through a pause of this process) and says it on
the federator's clock as estimated from the current stream's Welcome and Heartbeats (`Contact.federator_now`):
no synchronised clocks between member and federator needed, and the estimate errs early by the transit time only
(every federator_time is a lower bound), which a bill can bear. The federator clamps what it is told anyway
(server/end_times.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.agent.fencing import Contact
from federator.model import JobPhase


@dataclass(frozen=True)
class Ended:
    """The final phase of a placement, kept after the backend forgets it (the member deleted its objects)."""

    phase: JobPhase
    message: str
    at: float  # on the contact clock


def on_federator_clock(contact: Contact, ended: Ended | None) -> float:
    """JobUpdate.ended_at for `ended`: its time on the federator's clock as this stream estimates it; 0 (not said)
    when there is no estimate (no Welcome yet) or no end is known (a placement ended before this agent started)."""
    if ended is None:
        return 0.0
    now = contact.federator_now()
    if now is None:
        return 0.0
    return max(0.0, now - (contact.clock() - ended.at))


__all__ = ["Ended", "on_federator_clock"]
