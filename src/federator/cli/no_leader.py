"""What a refused or unanswered dial may mean with leader election: no replica serves between two leaders.

Why a module of its own: gRPC's words ("Connection refused", no answer in 10 s) are right, and the error line keeps
them, but during a failover they sent users to the network (HA QA F3). Only the leader of a federator's replicas
opens its gRPC port: a standby refuses every connect, a frozen leader answers none, and for up to the lease
duration after a leader died (15 s by default) none serves at all. A retry then succeeds, so the exit status stays
UNAVAILABLE (4); the note says when to retry and what to check if it does not.
"""

from __future__ import annotations

_NOT_SERVING = ("failed to connect", "connection refused", "timed out before receiving settings")
"""gRPC's details of a dial nothing answered (a closed port, a silent one): not a federator's own UNAVAILABLE."""

NOTE = ("note: nothing answered at {server}. A federator restarting or changing its leader (a failover: up to its "
        "--lease-duration, 15 s by default) serves no one meanwhile, and a standby replica never does: retry in "
        "about 15 s. If it persists, check that the federator runs and that --server leads to its leader (the "
        "chart's Service, or a target list of every replica: docs/kubernetes.md, \"Set up\")")


def gap_note(detail: str, server: str, *, unanswered: bool = False) -> str:
    """The note for a call whose dial found nothing serving ('' for any other failure); `unanswered`: the client's
    own deadline passed without an answer."""
    if unanswered or any(words in detail.lower() for words in _NOT_SERVING):
        return NOTE.format(server=server)
    return ""


__all__ = ["NOTE", "gap_note"]
