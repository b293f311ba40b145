"""A second agent with a cluster's name is refused while the first is live, not let to supersede it.

Why: the newest stream for a cluster always won. Two agent processes with one cluster name (a copy-pasted Helm
release, a second Deployment replica without leader election, a stale VM) then took the cluster from each other
about ten times a second; each one's re-sync said it held nothing, so every placement the other ran was cancelled
and placed again elsewhere, while `get clusters` showed the cluster Ready (outside SRE, chaos day).

The agent's Hello now carries its instance (agent.proto, Hello.instance: random per process, the same across its
reconnects). A Hello for a cluster whose current stream is live (a message within the lease) is refused when both
instances are set and differ: the newcomer's stream ends with ALREADY_EXISTS before any Welcome, and the current
session is untouched. ALREADY_EXISTS, not ABORTED (which says "superseded: reconnect and re-sync") nor
FAILED_PRECONDITION: the cluster's session is the thing that already exists, and a code no other refusal of the
contract uses lets an agent in any language tell this one apart without reading the words.

What still takes over at once, as before: the same instance reconnecting (a network blip; its old stream may
still look alive). A new instance is admitted once the current stream has been silent for a lease (its agent's
node died and it was started elsewhere), the time the federator's loop itself was stalled not counted
(server/stalls.py), as the lease check does (server/leases.py).

Agents that send no instance (older or third-party ones; either Hello empty) cannot be told apart by what they say,
and two of them with one name superseded each other for ever, each re-sync cancelling what the other ran, with only
FederatorAgentFlapping to hint at it. Peers and certificates do not tell them apart either: two replicas behind one
node's NAT share a host, a copied certificate is the same one, and a single agent's pod moved to another node
changes its host. What does: their takeovers. A stream is taken over while it is live (a message within the lease)
only when its agent reconnected without the federator seeing the old stream end (a half-open connection): rare,
once per network blip. Twins do it at every reconnect, seconds apart, since each one's agent is told ABORTED and
comes back. So a new stream without an instance takes over a live one as before up to TWIN_TAKEOVERS times in
TWIN_WINDOW_SECONDS; past that it is refused like a second instance (ALREADY_EXISTS, counted and shown the same),
and so is one while a second agent was refused within the window: a twin that keeps retrying stays refused rather
than winning again once the takeovers are older than the window. The holder keeps the cluster; the refused agent is
admitted once the holder has been silent for a lease, which is also how a single agent wrongly taken for a twin
(three half-open reconnects in five minutes) gets its cluster back, a lease later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from federator.server.refusal_log import RefusalLog

if TYPE_CHECKING:
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

MAX_INSTANCE_CHARS = 64
SHOWN_SECONDS = 60.0
"""How long after a refusal the cluster's status still names the refused agent: a refused agent retries every
few seconds at most (its backoff), so a status that says nothing for a minute means it stopped."""
REASON = "duplicate_agent"  # the refusal log's reason
TWIN_TAKEOVERS = 2
"""Takeovers of a live stream by a stream without an instance that the cluster takes within TWIN_WINDOW_SECONDS;
the next one is refused as a second agent (twins reach it within a few of their reconnects, a single agent only
after that many half-open reconnects)."""
TWIN_WINDOW_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The latest refused Hello of a second agent, kept on the record of the stream it was refused for."""

    message: str
    at: float  # the federator's clock


def check_instance(instance: str) -> str | None:
    """Hello.instance within its bounds, or the problem naming the field."""
    if len(instance) > MAX_INSTANCE_CHARS or not instance.isprintable():
        return (f"hello.instance: must be at most {MAX_INSTANCE_CHARS} printable characters (a UUID), got "
                f"{len(instance)} characters starting {instance[:40]!r}")
    return None


def refusal(current: ClusterRecord | None, *, instance: str, now: float, lease_seconds: float,
            stalled: float = 0.0) -> str:
    """Why a Hello of `instance` may not take the cluster from `current` (its record), or "" if it may.
    `stalled`: seconds the federator's loop was stalled since `current` was last heard (not its silence)."""
    silent = live_holder(current, now=now, lease_seconds=lease_seconds, stalled=stalled)
    if current is None or silent is None:
        return ""  # no stream holds it, or the agent that held it is gone (or cut off): the new one takes over
    if instance and instance == current.instance:
        return ""  # a reconnect of the same agent: the newest stream wins
    holder = f" at {current.peer_address}" if current.peer_address else ""
    if instance and current.instance:
        return (f"cluster {current.name}: another agent instance ({current.instance[:64]}{holder}, heard "
                f"{silent:.1f}s ago) holds it; a second agent with the same cluster name is refused until the first "
                f"has been silent for a lease ({lease_seconds:g}s). Stop one of them: two agents for one cluster "
                f"cancel each other's work")
    taken = len(recent_takeovers(current, now))
    refused = now - current.duplicate.at if current.duplicate is not None else TWIN_WINDOW_SECONDS + 1
    if taken < TWIN_TAKEOVERS and refused > TWIN_WINDOW_SECONDS:
        return ""  # with no instance to tell them apart, a reconnect after a blip: the newest stream wins
    evidence = (f"its stream was taken over {taken} times in the last {TWIN_WINDOW_SECONDS:g}s while live"
                if taken >= TWIN_TAKEOVERS else f"a second agent with its name was refused {refused:.0f}s ago")
    return (f"cluster {current.name}: another agent ({current.instance[:64] or 'no instance'}{holder}, heard "
            f"{silent:.1f}s ago) holds it, and {evidence}, with no Hello.instance to tell a reconnect from a second "
            f"agent: two agents with one cluster name. A new stream without an instance is refused until the "
            f"holder has been silent for a lease ({lease_seconds:g}s). Stop one of them, and have the agents send "
            f"Hello.instance: two agents for one cluster cancel each other's work")


def live_holder(current: ClusterRecord | None, *, now: float, lease_seconds: float,
                stalled: float = 0.0) -> float | None:
    """How long `current`, the stream holding a cluster, has been silent, if it is live: connected, not closing,
    and heard within the lease, the time the loop was `stalled` since not counted (server/stalls.py). None when it
    holds the cluster no more, and a new stream takes over whatever it says."""
    if current is None or not current.connected or current.closing:
        return None
    silent = max(0.0, now - current.last_seen_at - stalled)
    return silent if silent <= lease_seconds else None


def recent_takeovers(current: ClusterRecord, now: float) -> tuple[float, ...]:
    """When `current`'s cluster saw its live streams taken over within TWIN_WINDOW_SECONDS."""
    return tuple(t for t in current.takeovers if now - t <= TWIN_WINDOW_SECONDS)


def takeovers(current: ClusterRecord | None, *, instance: str, now: float, lease_seconds: float,
              stalled: float = 0.0) -> tuple[float, ...]:
    """What the stream of `instance`, admitted in place of `current`, carries as its cluster's takeovers: the
    recent ones plus this one when it takes a live stream with no instance on one side to tell them apart; none
    once the holder was gone (silent for a lease, or closed), since that is an agent coming back, not a twin."""
    if current is None or live_holder(current, now=now, lease_seconds=lease_seconds, stalled=stalled) is None:
        return ()
    recent = recent_takeovers(current, now)
    if instance and instance == current.instance:
        return recent  # a known reconnect: no evidence either way
    return (*recent, now)[-TWIN_TAKEOVERS:]


def refuse(fed: Federator, current: ClusterRecord, *, peer_address: str, message: str, log: RefusalLog) -> None:
    """Count and log a refused second agent (its peer address is how its operator finds it), and remember it on
    the record of the stream that holds the cluster, for `get clusters`."""
    fed.metrics.agent_duplicates_refused.labels(current.name).inc()
    host = peer_address.rpartition(":")[0] or peer_address  # the port changes at every retry; the host does not
    log.refused(f"{current.name} from {host}", REASON,
                f"refused an agent stream of cluster {current.name} from {peer_address or 'an unknown peer'}: "
                f"{message}")
    current.duplicate = Duplicate(f"an agent at {peer_address or 'an unknown peer'} was refused: {message}",
                                  fed.clock())


def shown(rec: ClusterRecord, now: float) -> str:
    """What the cluster's status says of a second agent: the latest refusal's words while one came within
    SHOWN_SECONDS, else ""."""
    d = rec.duplicate
    return d.message if d is not None and now - d.at <= SHOWN_SECONDS else ""


__all__ = ["MAX_INSTANCE_CHARS", "SHOWN_SECONDS", "TWIN_TAKEOVERS", "TWIN_WINDOW_SECONDS", "Duplicate",
           "check_instance", "live_holder", "recent_takeovers", "refusal", "refuse", "shown", "takeovers"]
