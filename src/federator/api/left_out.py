"""A capacity report's left-out devices (agent.proto `CapacityReport.left_out`): checked on arrival, and written back.

Why its own module: the devices an agent sees but does not offer (no label names their model; units that are not
chips) used to be said only in the agent's log and metrics, so a federator operator saw a member's capacity drop with
no reason. The report now carries them, and like every field an agent sends they are checked, never trusted: bounded
in count, each field naming itself when wrong. The federator only shows them; nothing is placed on them.
"""

from __future__ import annotations

import re

from federator.api.v1 import agent_pb2
from federator.model.cluster import LEFT_OUT_REASONS, MAX_LEFT_OUT, ClusterCapacity

_RESOURCE = re.compile(r"^[!-~]{1,253}$")  # printable ASCII without spaces


class LeftOutError(ValueError):
    """What is wrong with a report's left_out, naming the field."""


def left_out_from_pb(pb: agent_pb2.CapacityReport) -> tuple[tuple[str, str, int], ...]:
    """A report's left-out devices as sorted (resource_name, reason, devices); LeftOutError if one breaks a bound."""
    if len(pb.left_out) > MAX_LEFT_OUT:
        raise LeftOutError(f"capacity.left_out: at most {MAX_LEFT_OUT} entries, got {len(pb.left_out)}")
    seen: set[tuple[str, str]] = set()
    for i, d in enumerate(pb.left_out):
        where = f"capacity.left_out[{i}]"
        if not _RESOURCE.match(d.resource_name):
            raise LeftOutError(f"{where}.resource_name: must be 1..253 printable ASCII characters without spaces "
                               f"(such as nvidia.com/gpu), got {d.resource_name[:80]!r}")
        if d.reason not in LEFT_OUT_REASONS:
            raise LeftOutError(f"{where}.reason: must be one of {', '.join(LEFT_OUT_REASONS)}, got {d.reason[:80]!r}")
        if d.devices < 1:
            raise LeftOutError(f"{where}.devices: must be at least 1, got {d.devices}")
        if (d.resource_name, d.reason) in seen:
            raise LeftOutError(f"{where}: {d.resource_name} {d.reason} is listed twice (one entry per resource_name "
                               f"and reason)")
        seen.add((d.resource_name, d.reason))
    return tuple(sorted((d.resource_name, d.reason, d.devices) for d in pb.left_out))


def left_out_to_pb(cap: ClusterCapacity) -> list[agent_pb2.LeftOutDevices]:
    """The capacity's left-out devices as the contract's entries."""
    return [agent_pb2.LeftOutDevices(resource_name=r, reason=why, devices=n) for r, why, n in cap.left_out]


__all__ = ["LeftOutError", "left_out_from_pb", "left_out_to_pb"]
