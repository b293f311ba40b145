"""What agent and federator share to say a report's placement list as a change (agent.proto, PlacementDelta).

Why a module of its own: both sides must hash a list the same way, or every delta reads as a disagreement; the
rule lives once, beside the wire it belongs to, and is written so that an agent in another language can follow it
from the proto's words alone (SHA-256 of each id, the first 8 bytes big-endian, XOR-ed together).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

PLACEMENT_DELTAS = "placement-deltas"
"""The Welcome feature: this federator takes CapacityReport.placement_delta (and may send PlacementListWanted)."""
FULL_LIST_EVERY_SECONDS = 300.0
"""The reference agent sends its list in full at least this often, as a check (the contract's bound: 600 s)."""


def id_hash(placement_id: str) -> int:
    """One id's share of a list's digest."""
    return int.from_bytes(hashlib.sha256(placement_id.encode()).digest()[:8], "big")


def digest(placement_ids: Iterable[str]) -> int:
    """A list's digest: the XOR of its ids' hashes (0 for none), the same in any order."""
    value = 0
    for pid in placement_ids:
        value ^= id_hash(pid)
    return value


__all__ = ["FULL_LIST_EVERY_SECONDS", "PLACEMENT_DELTAS", "digest", "id_hash"]
