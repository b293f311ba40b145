"""A PyTorchJob's `elasticPolicy`, checked at submit: what the training operator's autoscaler could do with it.

Its own module, and pure, because the submit check (`server/templates.py`) may not import a backend (the federator
checks what a member renders without the member's code: tests/test_podtemplates.py); it sat in
`backends/kube/workloads/kubeflow.py` for a day (qaml60), which that rule's test caught.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.jsontext import whole_number

#: The replica type the training operator's autoscaler scales (the PyTorchJob scale subresource's specpath).
SCALED_ROLE = "Worker"


def elastic_problems(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A PyTorchJob whose `elasticPolicy.maxReplicas` is above its Workers' replicas (fields relative to the
    object). The training operator reconciles a HorizontalPodAutoscaler from a PyTorchJob's elasticPolicy (v1.9:
    when it has `metrics`; its earlier releases for every policy, with autoscaling/v2's default of 80 % CPU; min
    and max from the policy) on the job's scale subresource,
    `Worker.replicas`: it may add Workers up to maxReplicas, which the federator never reserved, quota-checked or
    billed, as it counts the pods the object asks (outside QA, ML platform E4). A maxReplicas of the Workers' own
    count (or none: the operator defaults it so) keeps torchrun's elasticity within the gang: minReplicas lets a
    run carry on with fewer Workers after a loss. A submit check, not a `pod_sets` refusal, so that a job stored
    before it still renders. The policy's bounds are read as the member's API server reads them
    (`jsontext.whole_number`), and one it would take but its operator could not use (not a mapping, a bound below
    1, the minimum above the maximum) is named here, not lost on the member (outside QA new60, N2)."""
    found = obj.get("spec")
    spec: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    policy = spec.get("elasticPolicy")
    if policy is None:
        return []
    if not isinstance(policy, Mapping):
        return [("spec.elasticPolicy", f"must be a mapping (minReplicas, maxReplicas, rdzvBackend, ...), got "
                                       f"{policy!r}")]
    bounds, problems = {}, []
    for name in ("minReplicas", "maxReplicas"):
        raw = policy.get(name)
        value = None if raw is None else whole_number(raw)
        if raw is not None and (value is None or value < 1):
            problems.append((f"spec.elasticPolicy.{name}", f"must be an integer >= 1 (the bound of the autoscaler "
                                                           f"the training operator makes), got {raw!r}"))
        elif value is not None:
            bounds[name] = value
    roles = spec.get("pytorchReplicaSpecs")
    role = roles.get(SCALED_ROLE) if isinstance(roles, Mapping) else None
    workers = whole_number(role.get("replicas", 1)) if isinstance(role, Mapping) else None
    if problems or workers is None:  # a Worker.replicas of another type: pod_sets names it
        return problems
    low, most = bounds.get("minReplicas"), bounds.get("maxReplicas")
    if low is not None and low > (most if most is not None else workers):
        above = f"spec.elasticPolicy.maxReplicas ({most})" if most is not None else \
            f"spec.pytorchReplicaSpecs.{SCALED_ROLE}.replicas ({workers}), which maxReplicas defaults to"
        return [("spec.elasticPolicy.minReplicas", f"is {low}, above {above}: the training operator's autoscaler "
                                                   "cannot be made with its minimum above its maximum")]
    if most is None or most <= workers:
        return []
    return [("spec.elasticPolicy.maxReplicas",
             f"is {most}, above spec.pytorchReplicaSpecs.{SCALED_ROLE}.replicas ({workers}): the training "
             f"operator's autoscaler may scale the Workers up to {most}, and the federator reserves, counts and "
             f"bills {workers}; set maxReplicas to {workers} (the gang is placed at most at that size; minReplicas "
             "lets torchrun carry on with fewer Workers after a loss), or ask for more Workers")]


def elastic_workers(obj: Mapping[str, Any]) -> int:
    """The fewest Workers a PyTorchJob's gang may start with: its `elasticPolicy.minReplicas` when below its
    Workers' replicas, else 0 (no policy, no minimum, or one `elastic_problems` names). The federator adds the
    counted pods of its other roles (a Master asking accelerators) to make JobSpec.min_replicas (model/elastic.py,
    jobfile.py), at submit, as it derives pod_sets: what a client claims is never taken (outside QA, ML platform
    E5)."""
    if elastic_problems(obj):
        return 0
    found = obj.get("spec")
    spec: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    policy, roles = spec.get("elasticPolicy"), spec.get("pytorchReplicaSpecs")
    if not isinstance(policy, Mapping) or not isinstance(roles, Mapping) or policy.get("minReplicas") is None:
        return 0
    role = roles.get(SCALED_ROLE)
    workers = whole_number(role.get("replicas", 1)) if isinstance(role, Mapping) else None
    low = whole_number(policy["minReplicas"])
    return low if low is not None and workers is not None and low < workers else 0


__all__ = ["SCALED_ROLE", "elastic_problems", "elastic_workers"]
