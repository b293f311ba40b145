"""How a brought workload's roles are counted, in the words of what the user wrote.

Why: a job's gang is N equal replicas (the scheduler's model). A brought workload (`spec.workload`: a JobSet's
replicated jobs, a PyTorchJob's Master and Workers, an LWS's leader and workers) has pod sets of its own, which
`backends/kube/workloads/common.py` `needs` counts as one gang: every pod that asks for accelerators, each at the
largest ask among them. So a JobSet of a learner 2 x 8, a rollout 4 x 1 and a reward model 1 x 1 (21
accelerators) is reserved, quota-checked and billed as 7 x 8 (56). The user wrote none of those numbers: a
warning naming `spec.replicas` blamed a field the file does not have (outside QA, ML platform E2), and nothing at
submit said what the roles cost. These functions say it in the roles' own names, for the submit warnings
(server/fleet_models.py, server/intake.py).

Since 0.20.0 a training gang whose roles ask unequal amounts carries them (`JobSpec.pod_sets`, model/pod_sets.py)
and is fitted, reserved, quota-checked and billed role by role (21, not 56): no warning is due for it. Spread work
(a LeaderWorkerSet's groups) is still equal replicas at the largest ask, and is still warned of.
"""

from __future__ import annotations

import json

from federator.backends.kube.workloads import adapter_for
from federator.backends.kube.workloads.common import PodSet, WorkloadError
from federator.model import MILLI, JobSpec


def counted_roles(spec: JobSpec) -> tuple[PodSet, ...]:
    """The pod sets of `spec.workload` its gang counts (those asking for accelerators; every one when none does),
    as `needs` counts them; () for a job without spec.workload, or one its adapter cannot read (refused at
    submit before this is asked)."""
    if not spec.workload_json:
        return ()
    try:
        obj = json.loads(spec.workload_json)
        sets = adapter_for(obj).pod_sets(obj)
    except (WorkloadError, ValueError, AttributeError, TypeError, KeyError, IndexError):
        return ()
    return tuple(p for p in sets if p.resources.accelerator_milli and p.count) or tuple(p for p in sets if p.count)


def _each(milli: int) -> str:
    return f"{milli // MILLI}" if milli % MILLI == 0 else f"{milli}m"


def _what(roles: tuple[PodSet, ...]) -> tuple[str, int, int]:
    """(unit, per-pod ask, sum of the asks) in the resource the gang is sized by: accelerators, else CPUs."""
    if any(p.resources.accelerator_milli for p in roles):
        unit = next((p.accelerator_resource for p in roles if p.accelerator_resource), "") or "accelerators"
        return unit, max(p.resources.accelerator_milli for p in roles), \
            sum(p.count * p.resources.accelerator_milli for p in roles)
    return "CPUs", max(p.resources.cpu_milli for p in roles), sum(p.count * p.resources.cpu_milli for p in roles)


def roles_listed(spec: JobSpec, *, unit: bool = True) -> str:
    """`learner 2 x 8, rollout 4 x 1, reward 1 x 1 nvidia.com/gpu`: each counted pod set, pods x each pod's ask
    (with `unit`, the resource it is counted in)."""
    return _listed(counted_roles(spec), unit=unit)


def _listed(roles: tuple[PodSet, ...], *, unit: bool) -> str:
    if not roles:
        return ""
    what, _, _ = _what(roles)
    milli = (lambda p: p.resources.accelerator_milli) if what != "CPUs" else (lambda p: p.resources.cpu_milli)
    return ", ".join(f"{p.name} {p.count} x {_each(milli(p))}" for p in roles) + (f" {what}" if unit else "")


def reserved_as(spec: JobSpec) -> str:
    """How the workload's pods became the gang a fleet-fit warning speaks of: `its pod sets (learner 2 x 8, ...
    nvidia.com/gpu) are reserved as 7 x 8: the largest role's ask times all pods (CPU and memory alike)`; "" for
    a job without spec.workload."""
    roles = counted_roles(spec)
    if not roles:
        return ""
    _, most, _ = _what(roles)
    pods = sum(p.count for p in roles)
    return (f"its pod sets ({_listed(roles, unit=True)}) are reserved as {pods} x {_each(most)}: the largest "
            "role's ask times all pods (CPU and memory alike)")


def unequal_roles_warnings(spec: JobSpec) -> list[str]:
    """A workload whose roles ask different amounts is reserved, counted against quota and billed above what its
    pods ask: said at submit with both numbers, and what to do instead. [] when the roles ask alike."""
    roles = counted_roles(spec)
    if spec.pod_sets or len(roles) < 2 or not any(p.resources.accelerator_milli for p in roles):
        return []  # a gang of pod sets is held and billed at what each role asks; usage bills accelerators
    unit, most, asked = _what(roles)
    pods = sum(p.count for p in roles)
    if pods * most <= asked:
        return []
    return [f"spec.workload: its pod sets ask {_each(asked)} {unit} in all ({_listed(roles, unit=False)}), "
            f"but spread work is replicas of equal pods on one model: it is reserved, counted against your quota and "
            f"billed as {pods} x {_each(most)} = {_each(pods * most)} (the largest role's ask times all pods); to "
            "hold and pay for what each role asks, submit the roles as jobs of their own, each with its own model "
            "and count (a job without spec.workload may ask a fraction of a device)"]


__all__ = ["counted_roles", "reserved_as", "roles_listed", "unequal_roles_warnings"]
