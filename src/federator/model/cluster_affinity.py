"""Cluster affinity: the member clusters a job may run on, by name and by the clusters' own labels.

Why: a job could bound its regions (`spec.regions.allowed`) but never name clusters, though members carry labels
(`federator.io/provider`, ...). Teams coming from Karmada (`placement.clusterAffinity.{clusterNames,
labelSelector}`) and organisations whose data may go only to certain providers' clusters need that bound
(outside QA, migrate M7). The job file's `spec.clusters` (jobfile.py), the FederatedJob's, and the wire's
`JobSpec.clusters` (types.proto) all come to a `ClusterAffinity`.

- `names`: the clusters it may run on; () = any name.
- `match_labels` and `match_expressions`: a Kubernetes label selector over a cluster's labels, the ones its agent
  reported in its Hello (never a tenant's to set); all of them must hold.

Names and selector are ANDed; an empty ClusterAffinity bounds nothing. Pure: the scheduler's ClusterAffinity
filter (scheduler/cluster_affinity.py) reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class LabelOperator(StrEnum):
    """A label requirement's operator, as Kubernetes' LabelSelectorRequirement spells it."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One of `spec.clusters.selector.matchExpressions`: In and NotIn take values, Exists and DoesNotExist none."""

    key: str
    operator: LabelOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a cluster with these labels meets it (NotIn holds for a cluster without the key, as in
        Kubernetes)."""
        if self.operator is LabelOperator.EXISTS:
            return self.key in labels
        if self.operator is LabelOperator.DOES_NOT_EXIST:
            return self.key not in labels
        inside = self.key in labels and labels[self.key] in self.values
        return inside if self.operator is LabelOperator.IN else not inside

    def __str__(self) -> str:
        if self.operator in (LabelOperator.EXISTS, LabelOperator.DOES_NOT_EXIST):
            return f"{self.key} {self.operator}"
        return f"{self.key} {self.operator} ({', '.join(self.values)})"


@dataclass(frozen=True, slots=True)
class ClusterAffinity:
    """The clusters a job may run on (`spec.clusters`); the default bounds nothing."""

    names: tuple[str, ...] = ()
    match_labels: tuple[tuple[str, str], ...] = ()  # sorted by key
    match_expressions: tuple[LabelRequirement, ...] = ()

    @property
    def bounds(self) -> bool:
        """Whether it rules any cluster out (False for the empty field: any cluster)."""
        return bool(self.names or self.match_labels or self.match_expressions)

    def refusal(self, name: str, labels: Mapping[str, str]) -> str | None:
        """Why a cluster of this name and labels is not one the job may run on, naming the field that says so;
        None when it is."""
        if self.names and name not in self.names:
            return f"is not among spec.clusters.names ({', '.join(self.names)})"
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return f"{_has(labels, key)}, spec.clusters.selector.matchLabels asks {key}={value}"
        for i, req in enumerate(self.match_expressions):
            if not req.matches(labels):
                return f"{_has(labels, req.key)}, spec.clusters.selector.matchExpressions[{i}] asks {req}"
        return None


def _has(labels: Mapping[str, str], key: str) -> str:
    return f"has {key}={labels[key]}" if key in labels else f"has no label {key}"


__all__ = ["ClusterAffinity", "LabelOperator", "LabelRequirement"]
