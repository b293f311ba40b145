"""A placement its agent lost: reported Failed while its pods may still run, so it is never placed again there.

Its own module because the Kubernetes backend (backends/kube/stranded.py), the agent (agent/agent.py) and the
federator (server/early_failures.py) must agree on the mark, and neither side may import the other.

Why: an agent that no longer watches a placement's namespace, and lacks the rights to read or delete there (a
namespacePerQueue placement after the switch was turned off with the RBAC narrowed), reports it Failed at its
start, because it can neither follow nor cancel it. Its pods may still run and hold their accelerators. The
federator read that Failed as any other: within --early-failure-seconds of its start (or of the job's placement
after a federator restart) it placed the job once more, elsewhere, and a spread job's part that failed was placed
again whatever its age. The job then ran twice, the very thing reporting Failed (not Cancelled) was meant to
prevent.

The contract (agent.proto, JobUpdate.lost, field 10 since 0.8.0): the agent reports such a placement Failed with
`lost` set, and lists the feature "lost" in its Hello. The federator (server/early_failures.py) never places
that part again; a training gang, or a job with nothing else live, ends Failed with the agent's message, while a
spread (inference) job's other parts keep serving and only its lost replicas are placed elsewhere
(docs/operators.md).

Before the field (0.7.0, when agent.proto was closed for the release) the mark was words: the Failed message
began with `lost_message(cluster, "")` ("lost by the agent of <cluster>: "), `cluster` being the reporting
agent's own, a text protocol no third-party agent could learn from the proto. Through 0.9.x both ways hold (0.10.0
reads the field alone; docs/operators.md, "Upgrading to 0.9.0"):

- The federator reads the field alone from an agent that lists "lost" (its words are then only words), and
  still honours the words from an agent that does not (a 0.7.0 agent). `reported_lost` decides.
- The reference agent sends both: the field, and a message that begins with the words. It cannot know whether
  its federator knows the field (a Welcome says no federator features, only a version string, and 0.7.0 ignores
  an unknown field silently), and the words are the message it wrote for people anyway, so a 0.7.0 federator
  reads the placement as lost and a 0.8.0 one reads the field. `LostMessage` carries the mark from the
  Kubernetes backend (backends/kube/stranded.py) to the agent's JobUpdate, re-syncs included.

Why the cluster's own name in the words: they are a claim by one member about its own placement. A message
naming another cluster ("lost by the agent of <someone else>: ...") is no such claim, so it is read as an
ordinary failure (the early-failure and spread rules apply), not as leave to end a job unplaced.
"""

from __future__ import annotations

LOST_PREFIX = "lost by the agent of "


class LostMessage(str):
    """The Failed message of a placement its agent lost: a `str`, so everything that keeps or shows an update's
    message keeps this one, and the agent sets JobUpdate.lost for it (`marked_lost`)."""

    __slots__ = ()


def lost_message(cluster: str, why: str) -> LostMessage:
    """The Failed message of a placement the agent of `cluster` lost, `why` saying how and the way out: it begins
    with the words a 0.7.0 federator reads (see the module)."""
    return LostMessage(f"{LOST_PREFIX}{cluster}: {why}")


def marked_lost(message: str) -> bool:
    """Whether an agent's update message is a `LostMessage` (the agent's side: JobUpdate.lost)."""
    return isinstance(message, LostMessage)


def reported_lost(flagged: bool, message: str, cluster: str, *, marks: bool) -> bool:
    """Whether a Failed update from the agent of `cluster` says the agent lost the placement: `flagged`
    (JobUpdate.lost) always does; the words (`is_lost`) only from an agent that does not list the feature "lost"
    (`marks`), which is one of before the field."""
    return flagged or (not marks and is_lost(message, cluster))


def is_lost(message: str, cluster: str) -> bool:
    """Whether a Failed update's message, from the agent of `cluster`, says that agent lost the placement (see the
    module): the prefix must name `cluster` itself."""
    return message.startswith(lost_message(cluster, ""))


__all__ = ["LOST_PREFIX", "LostMessage", "is_lost", "lost_message", "marked_lost", "reported_lost"]
