"""What the federator promises an agent stream, and the rule that keeps a paused agent from running a job twice.

Kept apart from the state machine: these are the stream's terms (the Welcome's
numbers, heartbeats, how old a Launch may be), and `check_terms` refuses a
configuration that would let the federator re-place a job while an agent that
was frozen could still be running its old copy (docs/reliability.md, "Pauses").

The rule: the federator re-places a Lost cluster's jobs no sooner than
`lease + lost_after` after it last heard the agent; it sends nothing to a
stream it has not heard from for a lease (no heartbeat keeps a silent agent's
contact fresh); an agent stops its placements `fence_limit` after its last
message from the federator and starts no order older than `order_max_age`.
So with `lost_after >= fence_limit + order_max_age` the old copy is stopped
before the replacement is placed. The federator checks its half here (there
must be room for a fence limit); each agent checks its --fence-after against
the Welcome's numbers (agent/fencing.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from federator import __version__
from federator.api.launch_confirmation import LAUNCH_CONFIRMATION
from federator.api.placement_lists import PLACEMENT_DELTAS
from federator.api.seals import SEALS
from federator.api.v1 import agent_pb2

MAX_ORDER_AGE_DEFAULT = 10.0


def default_order_max_age(lost_after: float) -> float:
    """10 s, or a quarter of --lost-after if that is shorter (short test leases keep room for a fence limit)."""
    return min(MAX_ORDER_AGE_DEFAULT, lost_after / 4)


def check_terms(*, lease_seconds: float, lost_after: float, order_max_age: float) -> str | None:
    """None if the federator's timing leaves room for agents to fence in time, else what is wrong (naming flags)."""
    if order_max_age <= 0:
        return f"--order-max-age: must be positive, got {order_max_age:g}"
    if lost_after <= order_max_age:
        return (f"--lost-after {lost_after:g} must be longer than --order-max-age {order_max_age:g}: an agent "
                "stops its placements fence_after seconds after it last heard the federator and starts no order "
                "older than order_max_age, so lost_after >= fence_after + order_max_age (docs/reliability.md, "
                "\"Pauses\")")
    if lease_seconds <= 0:
        return f"--lease-seconds: must be positive, got {lease_seconds:g}"
    return None


@dataclass(frozen=True, slots=True)
class StreamTerms:
    report_interval: float
    lease_seconds: float
    lost_after: float
    order_max_age: float
    clock: Callable[[], float] = time.time

    @property
    def heartbeat_interval(self) -> float:
        """At most a third of the lease, so an agent hears something well within it."""
        return max(0.05, min(self.report_interval, self.lease_seconds / 3))

    def welcome(self, *, reports_per_second: float = 0.0, report_burst: int = 0,
                report_bytes_per_second: int = 0, job_updates_per_second: float = 0.0,
                job_update_burst: int = 0, hello_received_at: float = 0.0) -> agent_pb2.FederatorMessage:
        """The Welcome, with the report and JobUpdate limits of the stream (its `Limits`, not these terms'), and
        when the Hello was read (this clock), so the agent can bound the Welcome's travel (agent/fencing.py)."""
        return agent_pb2.FederatorMessage(welcome=agent_pb2.Welcome(
            report_interval_seconds=self.report_interval, lease_seconds=self.lease_seconds,
            federator_version=__version__, federator_time=self.clock(), hello_received_at=hello_received_at,
            lost_after_seconds=self.lost_after,
            order_max_age_seconds=self.order_max_age, heartbeat_interval_seconds=self.heartbeat_interval,
            max_reports_per_second=reports_per_second, report_burst=report_burst,
            max_report_bytes_per_second=report_bytes_per_second,
            max_job_updates_per_second=job_updates_per_second, job_update_burst=job_update_burst,
            # It rebuilds a report's list from a delta (server/placement_lists.py); it gives a placement up only by a
            # Cancel after its Launch or by ending the stream, so a later dated message confirms a late Launch.
            features=[PLACEMENT_DELTAS, LAUNCH_CONFIRMATION, SEALS]))  # seals: server/seals.py

    def heartbeat(self, last_heard: float) -> agent_pb2.FederatorMessage | None:
        """A heartbeat, unless the agent has been silent for a lease: a Partitioned cluster's agent must not be
        told all is well, or its contact would look fresh while the federator counts down to Lost."""
        now = self.clock()
        if now - last_heard > self.lease_seconds:
            return None
        return agent_pb2.FederatorMessage(heartbeat=agent_pb2.Heartbeat(federator_time=now))

    def stamp(self, launch: agent_pb2.Launch, *, silent: float = 0.0) -> None:
        """Date a Launch as it leaves, and bound its age. `silent`: seconds since the agent's last message (the
        federator's own stalls left out, as the leases count it). Past the lease, dated when the lease ran out:
        the rule assumes nothing leaves for a silent agent after that (a heartbeat does not), but a Launch queued
        behind a slow link did, dated afresh just before the cluster went Lost, and an agent took it fresh after
        the job was placed elsewhere. Dated so, it is stale by the time the federator may give its job up."""
        launch.issued_at = self.clock() - max(0.0, silent - self.lease_seconds)
        launch.max_age_seconds = self.order_max_age


__all__ = ["StreamTerms", "check_terms", "default_order_max_age"]
