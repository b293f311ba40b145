"""A placement its agent lost: reported Failed while its pods may still run, so it is never placed again there.

Its own module because the Kubernetes agent (backends/kube/stranded.py) and the federator
(server/early_failures.py) must agree on the words, and neither may import the other.

Why: an agent that no longer watches a placement's namespace, and lacks the rights to read or delete there (a
namespacePerQueue placement after the switch was turned off with the RBAC narrowed), reports it Failed at its
start, because it can neither follow nor cancel it. Its pods may still run and hold their accelerators. The
federator read that Failed as any other: within --early-failure-seconds of its start (or of the job's placement
after a federator restart) it placed the job once more, elsewhere, and a spread job's part that failed was placed
again whatever its age. The job then ran twice, the very thing reporting Failed (not Cancelled) was meant to
prevent.

The convention: the JobUpdate message of such a Failed begins with `lost_message(cluster, "")` ("lost by the agent
of <cluster>: "), `cluster` being the reporting agent's own. The federator (server/early_failures.py) never places
that part again; a training gang, or a job with nothing else live, ends Failed with that message, while a spread
(inference) job's other parts keep serving and only its lost replicas are placed elsewhere (docs/operators.md).
The prefix is the agent's message as it was already worded, so agents of 0.7.0 that say it are understood as
they are.

Why the cluster's own name: the words are a claim by one member about its own placement. A message naming another
cluster ("lost by the agent of <someone else>: ...") is no such claim, so it is read as an ordinary failure (the
early-failure and spread rules apply), not as leave to end a job unplaced.
"""

from __future__ import annotations

LOST_PREFIX = "lost by the agent of "


def lost_message(cluster: str, why: str) -> str:
    """The Failed message of a placement the agent of `cluster` lost, `why` saying how and the way out."""
    return f"{LOST_PREFIX}{cluster}: {why}"


def is_lost(message: str, cluster: str) -> bool:
    """Whether a Failed update's message, from the agent of `cluster`, says that agent lost the placement (see the
    module): the prefix must name `cluster` itself."""
    return message.startswith(lost_message(cluster, ""))


__all__ = ["LOST_PREFIX", "is_lost", "lost_message"]
