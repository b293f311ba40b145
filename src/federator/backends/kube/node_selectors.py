"""Whether any node of the member could ever take a workload's pods: their nodeSelector and required node affinity
against every node's labels.

Why: the federator knows pools, not node labels, so a template's own nodeSelector (an InfiniBand label, a zone, an
NVLink clique) is not part of placement. Outside QA (an ML user, F3) saw a job sent to a member where no node had
the label: its pods sat unschedulable through the whole gang timeout before it was placed elsewhere, and on a Kueue
member, where no gang timeout applies, it stayed Placed, holding the ClusterQueue's quota, for as long as anyone
watched. The agent now refuses such a launch at once, naming the field, so the federator places the job elsewhere
(and counts the refusal toward --max-refusals, so a selector no member matches ends the job).

Every node is read, Ready or not, tainted or not: this says "never here", not "not now" (a template may tolerate
a taint the agent does not). Operators that cannot be judged from labels alone (Gt, Lt, matchFields) are taken
as matching: only a plain mismatch refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Obj = dict[str, Any]


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A nodeSelectorTerm: all of its matchExpressions hold (one the agent cannot judge holds)."""
    for expr in term.get("matchExpressions") or []:
        if not isinstance(expr, Mapping):
            continue
        key, op, values = str(expr.get("key", "")), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _required_terms(pod_spec: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or [] if isinstance(required, Mapping) else []
    return [t for t in terms if isinstance(t, Mapping)]


def no_node_for(pod_spec: Mapping[str, Any], nodes: Iterable[Obj], at: str) -> str:
    """Why no node of `nodes` could take a pod of `pod_spec` (its template at `at`), or "" if one could."""
    selector = pod_spec.get("nodeSelector") or {}
    selector = selector if isinstance(selector, Mapping) else {}
    terms = _required_terms(pod_spec)
    if not selector and not terms:
        return ""
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in selector.items()) and (
                not terms or any(_term_matches(t, labels) for t in terms)):
            return ""
    if selector and not any(all(((n.get("metadata") or {}).get("labels") or {}).get(k) == v
                                for k, v in selector.items()) for n in nodes):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return f"{at}.spec.nodeSelector: no node of this cluster has the labels {shown}"
    return (f"{at}.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: no node of this "
            "cluster matches it (with the nodeSelector)")


__all__ = ["no_node_for"]
