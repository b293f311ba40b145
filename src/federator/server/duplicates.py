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
still look alive), and any Hello where either instance is empty (an older or third-party agent: newest wins).
A new instance is admitted once the current stream has been silent for a lease (its agent's node died and it
was started elsewhere), the time the federator's loop itself was stalled not counted (server/stalls.py), as the
lease check does (server/leases.py).
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
    if current is None or not current.connected or current.closing:
        return ""
    if not instance or not current.instance or instance == current.instance:
        return ""  # a reconnect of the same agent, or one that says nothing: the newest stream wins
    silent = max(0.0, now - current.last_seen_at - stalled)
    if silent > lease_seconds:
        return ""  # the agent that held it is gone (or cut off): the new one takes over
    holder = f" at {current.peer_address}" if current.peer_address else ""
    return (f"cluster {current.name}: another agent instance ({current.instance[:64]}{holder}, heard {silent:.1f}s "
            f"ago) holds it; a second agent with the same cluster name is refused until the first has been silent "
            f"for a lease ({lease_seconds:g}s). Stop one of them: two agents for one cluster cancel each other's work")


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


__all__ = ["MAX_INSTANCE_CHARS", "SHOWN_SECONDS", "Duplicate", "check_instance", "refusal", "refuse", "shown"]
