"""spec.minReplicas of a job file and a FederatedJob: the fewest replicas an elastic training gang starts with.

Its own module, as each of the job file's asks (jobfile_affinity.py, jobfile_failure_policy.py): the contract is
model/elastic.py's. A job that brings its workload (spec.workload) does not write it: the federator derives it from
the workload (a PyTorchJob's elasticPolicy.minReplicas, elastic_policy.elastic_minimum), as it derives replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from federator.backends.kube.workloads.common import PodSet, counted_sets
from federator.elastic_policy import SCALED_ROLE, elastic_workers
from federator.model import JobKind
from federator.model.elastic import min_replicas_problem


def parse_min_replicas(spec: Mapping[str, Any], bad: Callable[[str, str], None], *, kind: JobKind, replicas: int,
                       derived: int | None, workload_kind: str = "") -> int:
    """spec.minReplicas, checked (0 when absent or wrong, the problem told to `bad`); `derived` is the brought
    workload's own minimum (None: the job brings none), which a written spec.minReplicas may not replace;
    `workload_kind` the brought workload's kind, which the refusal names (elasticqa63: a JobSet was told its
    minimum "is derived from spec.workload (a PyTorchJob's ...)", where nothing is derived)."""
    if derived is not None:
        if "minReplicas" in spec:
            bad("spec.minReplicas", "is derived from spec.workload (a PyTorchJob's spec.elasticPolicy.minReplicas); "
                                    "remove it" if workload_kind == "PyTorchJob" else
                "applies to training jobs without spec.workload (a brought "
                f"{workload_kind or 'workload'} is placed whole; only a PyTorchJob's elasticPolicy.minReplicas "
                "makes a brought workload elastic); remove it")
        return derived
    value = spec.get("minReplicas", 0)
    if "minReplicas" in spec and value == 0 and not isinstance(value, bool):
        bad("spec.minReplicas", f"must be a whole number from 1 to spec.replicas ({replicas}) (leave it out for a gang "
                                "that starts whole), got 0")
        return 0
    problem = min_replicas_problem(kind=kind, replicas=replicas, min_replicas=value)
    if problem:
        bad("spec.minReplicas", problem)
        return 0
    return int(value) if value != replicas else 0  # a minimum of the whole gang is no elasticity: stored as none


def elastic_minimum(obj: Mapping[str, Any], pod_sets: list[PodSet]) -> int:
    """A PyTorchJob's JobSpec.min_replicas (model/elastic.py): its elasticPolicy's fewest Workers plus the counted
    pods of its other roles (`counted_sets`: a Master asking accelerators; a CPU-only one is no replica), 0 when it
    has none or its Workers are not counted replicas."""
    low = elastic_workers(obj)
    counted = counted_sets(pod_sets)
    if not low or SCALED_ROLE not in {p.name for p in counted}:
        return 0
    return low + sum(p.count for p in counted if p.name != SCALED_ROLE)


__all__ = ["elastic_minimum", "parse_min_replicas"]
