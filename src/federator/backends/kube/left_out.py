"""Accelerators the agent leaves out of its report, counted and said once per node: what `unlabelled.py` (no label
names their model) and `unsupported.py` (units that are not chips) share.

Why one place: both kinds are left out so that nothing unplaceable is offered, and both must not be silent about
it; what differs is only the warning's words, so the once-per-(node, resource) memory and the counts live here,
and so does what the capacity report says of both (`left_out_of`: agent.proto CapacityReport.left_out, bounded), so
the federator's operator sees them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Generic, Protocol, TypeVar

from federator.model.cluster import MAX_LEFT_OUT

#: The most devices one reported entry may count (agent.proto LeftOutDevices.devices is an int32).
MAX_LEFT_OUT_DEVICES = 2**31 - 1


class LeftOutDevices(Protocol):
    """Devices of one resource on one node that the agent does not offer."""

    @property
    def node(self) -> str: ...

    @property
    def resource(self) -> str: ...

    @property
    def devices(self) -> int: ...


D = TypeVar("D", bound=LeftOutDevices)


class LeftOut(Generic[D]):
    """The devices last seen left out, per resource, and the (node, resource) pairs already warned of; `warn`
    says one pair (the subclass's words)."""

    def __init__(self) -> None:
        self._warned: set[tuple[str, str]] = set()
        self.by_resource: Mapping[str, int] = {}

    def warn(self, found: D) -> None:
        raise NotImplementedError

    def seen(self, found: Iterable[D]) -> Mapping[str, int]:
        """Take the left-out devices of every node now: warn of each (node, resource) not warned of while it stayed
        left out (one gone and back is said again); return the counts."""
        counts: dict[str, int] = {}
        now: set[tuple[str, str]] = set()
        for u in found:
            counts[u.resource] = counts.get(u.resource, 0) + u.devices
            key = (u.node, u.resource)
            now.add(key)
            if key not in self._warned:
                self.warn(u)
        self._warned = now
        self.by_resource = counts
        return counts


def left_out_of(by_reason: Mapping[str, Mapping[str, int]]) -> tuple[tuple[str, str, int], ...]:
    """What the capacity report says of the counts ({reason: {resource: devices}}, agent.proto
    CapacityReport.left_out), so the federator's operator sees them too: sorted, empty counts dropped, at most
    MAX_LEFT_OUT entries (those of the most devices), each count within an int32."""
    entries = [(r, why, min(n, MAX_LEFT_OUT_DEVICES)) for why, counts in by_reason.items()
               for r, n in counts.items() if n > 0]
    return tuple(sorted(sorted(entries, key=lambda e: (-e[2], e[0], e[1]))[:MAX_LEFT_OUT]))


__all__ = ["LeftOut", "LeftOutDevices", "left_out_of"]
