"""Cluster affinity: the member clusters a job may run on, by name and by the clusters' own labels.

Why: a job could bound its regions (`spec.regions.allowed`) but never name clusters, though members carry labels
(`federator.io/provider`, ...). Teams coming from Karmada (`placement.clusterAffinity.{clusterNames,
labelSelector}`) and organisations whose data may go only to certain providers' clusters need that bound
(outside QA, migrate M7). The job file's `spec.clusters` (jobfile.py), the FederatedJob's, and the wire's
`JobSpec.clusters` (types.proto) all come to a `ClusterAffinity`.

- `names`: the clusters it may run on; () = any name.
- `match_labels` and `match_expressions`: a Kubernetes label selector over a cluster's labels, the ones its agent
  reported in its Hello (never a tenant's to set); all of them must hold. A requirement is
  model/label_requirement.py's, the one kubectl's `-l` for jobs (model/label_selector.py) comes to.

- `same_as`: jobs (ids once Submit resolved them; names or ids before) whose clusters the job must share: it may
  run only on a cluster where every one of them holds a placement now (scheduler/same_as.py). Why: an RL
  pipeline split into jobs (a learner gang, rollout workers, a reward-model server) streams weights over one
  cluster's fabric, and a `names` pin chosen by hand cannot follow the learner wherever it was placed.

Names, selector and same_as are ANDed; an empty ClusterAffinity bounds nothing. Pure: the scheduler's ClusterAffinity
filter (scheduler/cluster_affinity.py) reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# one requirement type and one matching rule for every label selector (model/label_requirement.py)
from federator.model.label_requirement import LabelOperator, LabelRequirement


@dataclass(frozen=True, slots=True)
class ClusterAffinity:
    """The clusters a job may run on (`spec.clusters`); the default bounds nothing."""

    names: tuple[str, ...] = ()
    match_labels: tuple[tuple[str, str], ...] = ()  # sorted by key
    match_expressions: tuple[LabelRequirement, ...] = ()
    same_as: tuple[str, ...] = ()  # job ids (keys before Submit resolves them), in the order given

    @property
    def bounds(self) -> bool:
        """Whether it rules any cluster out (False for the empty field: any cluster)."""
        return bool(self.names or self.match_labels or self.match_expressions or self.same_as)

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
