"""Whose placement a workload is: the agent's identity, written on every object and pod it makes.

Why: the marks the agent put on its objects (`app.kubernetes.io/managed-by: federator`, the placement id) say
"a federator agent's", not which one. Two agents on one member (two federations, or two clusters' names for one
member), whose `--namespace`s are named alike, took each other's pods for their own: an agent whose RBAC was
narrowed (it may list pods everywhere, workloads only in `--namespace`) found agent B's pods in `fed-team` (B's
`--namespace`) while looking for its own per-queue leftovers in `fed-*` (stranded.py), and reported B's
placements to its own federator as lost, Failed; their ids end in the cluster's name, which both federations may
give the member alike.

Decided: the agent writes who it is on each workload it makes and on its pod templates (so its pods carry it):
the annotations `federator.io/cluster` (its `--cluster`), `federator.io/agent-namespace` (its `--namespace`: where
it, and its per-queue namespaces `<--namespace>-<queue>`, put placements) and `federator.io/federator` (the
federator it reports to, its `--server`). Annotations, not labels: exact, whatever the name. An agent takes as its
own only what carries its cluster and its `--namespace`. The federator's address is written to name the other
agent in what is logged, not compared: an operator may change `--server` (a new DNS name for the same federator),
and the agent would then disown the placements it made, while two agents with one cluster name and one
`--namespace` share every namespace whatever their federators (said at WARNING: tenant_namespaces.py, `mine`).
A workload made before 0.12.0 carries none of it, and the namespace rules decide as before; where they cannot
(stranded.py) it is left alone, said at WARNING. A job may not carry these annotations (podtemplates.AGENT_KEYS):
in a template the agent does not stamp they would pass its pods off as another agent's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Shared with the submit check: a job may not carry them (podtemplates.AGENT_KEYS)
from federator.podtemplates import AGENT_NAMESPACE_ANNOTATION, CLUSTER_ANNOTATION, FEDERATOR_ANNOTATION


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """Who an agent is, as written on its objects."""

    cluster: str
    namespace: str  # its --namespace
    federator: str = ""  # its --server, as given

    def annotations(self) -> dict[str, str]:
        return {CLUSTER_ANNOTATION: self.cluster, AGENT_NAMESPACE_ANNOTATION: self.namespace,
                FEDERATOR_ANNOTATION: self.federator}

    def owns(self, obj: Mapping[str, Any]) -> bool | None:
        """Whether a workload or pod is this agent's: True, False (another agent's), None (it carries no
        identity: made before 0.12.0, or not by an agent)."""
        other = identity_of(obj)
        if other is None:
            return None
        return (other.cluster, other.namespace) == (self.cluster, self.namespace)

    def __str__(self) -> str:
        return (f"cluster {self.cluster or '(none)'}, --namespace {self.namespace}, federator "
                f"{self.federator or '(not said)'}")


def identity_of(obj: Mapping[str, Any]) -> AgentIdentity | None:
    """The identity a workload or pod carries; None when it carries none."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if AGENT_NAMESPACE_ANNOTATION not in annotations:
        return None
    return AgentIdentity(cluster=str(annotations.get(CLUSTER_ANNOTATION, "")),
                         namespace=str(annotations[AGENT_NAMESPACE_ANNOTATION]),
                         federator=str(annotations.get(FEDERATOR_ANNOTATION, "")))


__all__ = ["CLUSTER_ANNOTATION", "FEDERATOR_ANNOTATION", "AGENT_NAMESPACE_ANNOTATION", "AgentIdentity", "identity_of"]
