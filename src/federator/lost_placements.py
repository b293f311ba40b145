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
began with `lost_message(cluster, "")` ("lost by the agent of <cluster>: "), a text protocol no third-party agent
could learn from the proto. 0.8.0 and 0.9.0 read both; since 0.10.0 the federator reads the field alone
(docs/operators.md, "Upgrading to 0.10.0"): words at the start of a message are a message, and a workload's own
text may begin so. The reference agent still begins a lost placement's message with them, since they say to
people what happened and where; `LostMessage` carries the mark from the Kubernetes backend
(backends/kube/stranded.py) to the agent's JobUpdate, re-syncs included.

Why the cluster's own name in the words: a member's operator reads them, and they name whose agent lost it.
"""

from __future__ import annotations

LOST_PREFIX = "lost by the agent of "


class LostMessage(str):
    """The Failed message of a placement its agent lost: a `str`, so everything that keeps or shows an update's
    message keeps this one, and the agent sets JobUpdate.lost for it (`marked_lost`)."""

    __slots__ = ()


def lost_message(cluster: str, why: str) -> LostMessage:
    """The Failed message of a placement the agent of `cluster` lost, `why` saying how and the way out (the
    agent sets JobUpdate.lost for it: the words are for people; see the module)."""
    return LostMessage(f"{LOST_PREFIX}{cluster}: {why}")


def marked_lost(message: str) -> bool:
    """Whether an agent's update message is a `LostMessage` (the agent's side: JobUpdate.lost)."""
    return isinstance(message, LostMessage)


__all__ = ["LOST_PREFIX", "LostMessage", "lost_message", "marked_lost"]
