"""LeaderWorkerSet (leaderworkerset.x-k8s.io/v1): multi-host inference in groups.

A group is one leader and size-1 workers (the leader's template defaults to
the workers'); a group is a gang inside one cluster, and groups spread over
clusters like inference replicas. The federator counts replicas in pods (of
the pod sets that ask for accelerators, see `common.needs`), so one group is
`group_size` of them, and a placement of R replicas runs R / group_size groups.

LWS makes a StatefulSet of workers per group, `<lws>-<groupIndex>`, and the
StatefulSet controller labels their pods with `<statefulset>-<hash>`: the member's
copy has a name of at most `NAME_BUDGET` so that label stays valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from federator.backends.kube.workloads.adapter import (
    TemplatedAdapter,
    condition,
    expected_pods,
    pods_phase,
    replica_counts,
)
from federator.backends.kube.workloads.common import (
    Obj,
    PodSet,
    WorkloadError,
    count_at,
    mapping_at,
    needs,
    template_pod_set,
)
from federator.model import JobKind, JobPhase, Placement

_LWT = "spec.leaderWorkerTemplate"
LABEL_VALUE = 63
GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"  # LWS's labels on every pod of a group
WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"  # "0" on the leader
REVISION_HASH = 10  # at most, of the hash in a StatefulSet's controller-revision-hash (HashControllerRevision)
NAME_BUDGET = 45
"""The longest name of a member's copy of a LeaderWorkerSet. LWS (v0.7.0, pkg/controllers/pod_controller.go,
`constructWorkerStatefulSetApplyConfiguration`) names each group's worker StatefulSet after its leader pod,
`<lws>-<groupIndex>`, and the StatefulSet controller labels the worker pods
`controller-revision-hash=<statefulset>-<hash>` (kubernetes pkg/controller/history `ControllerRevisionName`,
a hash of up to 10 characters), a label value of at most 63: the API server refuses every worker pod past that
and LWS's own webhook checks nothing of it (kubernetes-sigs/lws#410). 63 - 11 - 1 - 6 = 45 holds for up to
a million groups (LWS's own cap on spec.replicas in later versions)."""


@dataclass(frozen=True, slots=True)
class LeaderWorkerSetAdapter(TemplatedAdapter):
    api_version: str = "leaderworkerset.x-k8s.io/v1"
    kind: str = "LeaderWorkerSet"
    plural: str = "leaderworkersets"
    job_kind: JobKind = JobKind.INFERENCE
    name_budget: ClassVar[int] = NAME_BUDGET
    dns1035: ClassVar[bool] = True  # LWS makes a headless Service of its name

    def check_names(self, obj: Mapping[str, Any]) -> None:
        groups = count_at(obj, "spec.replicas", 1)
        label = NAME_BUDGET + len(f"-{max(groups - 1, 0)}") + 1 + REVISION_HASH
        if label > LABEL_VALUE:
            raise WorkloadError("spec.replicas", f"{groups} groups are too many for LWS's names: the worker pods "
                                                 "of the last would get a controller-revision-hash label over "
                                                 f"{LABEL_VALUE} characters")

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        groups = count_at(obj, "spec.replicas", 1)
        size = count_at(obj, f"{_LWT}.size", 1, minimum=1)
        lwt = mapping_at(obj, "spec", required=False).get("leaderWorkerTemplate")
        if not isinstance(lwt, Mapping):
            raise WorkloadError(_LWT, "is required (a mapping)")
        leader_path = f"{_LWT}.leaderTemplate" if lwt.get("leaderTemplate") is not None else f"{_LWT}.workerTemplate"
        out = [template_pod_set(obj, leader_path, name="leader", count=groups)]
        workers = template_pod_set(obj, f"{_LWT}.workerTemplate", name="workers", count=groups * (size - 1))
        return out + [workers] if size > 1 else out

    def group_size(self, obj: Mapping[str, Any]) -> int:
        groups = count_at(obj, "spec.replicas", 1)
        if groups == 0:
            return 1
        pods, _ = needs(self.pod_sets(obj))
        return max(1, pods // groups)

    def scale(self, obj: Obj, placement: Placement) -> None:
        size = self.group_size(obj)
        if placement.replicas % size:
            raise WorkloadError("spec.replicas", f"a placement of {placement.replicas} replicas is not a whole "
                                                 f"number of groups of {size}")
        obj.setdefault("spec", {})["replicas"] = placement.replicas // size

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        if condition(obj, "Available"):
            return JobPhase.RUNNING, _running(obj)
        pods = list(pods)
        phase, message = pods_phase(obj, pods, serving=True)
        if phase is JobPhase.PLACED and (why := _workers_missing(obj, pods)):
            message = f"{message}; {why}"
        return phase, message

    def counts(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
        """Pods, as the placement's replicas count them (groups times their size)."""
        if condition(obj, "Available"):
            return expected_pods(obj), expected_pods(obj)
        return replica_counts(obj, pods)


def _running(obj: Mapping[str, Any]) -> str:
    """"12 replicas running (in groups of 4)": in replicas, the unit of everything else said of the job (its
    spec.replicas, "2 of 4 replicas placed", READY 2/4, a Placed copy's "1 of 4 replicas running"), where this said
    "1 groups available" (outside QA, an inference team). The group size, as the scheduler's "(in groups of 4)"
    says it, tells why the count moves a group at a time."""
    want = expected_pods(obj)
    groups = count_at(obj, "spec.replicas", 1)
    size = want // groups if groups and want % groups == 0 else 1
    return f"{want} {'replica' if want == 1 else 'replicas'} running" + (f" (in groups of {size})" if size > 1 else "")


def _workers_missing(obj: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> str:
    """Why groups whose leader runs have no worker pod at all ("" when none): the StatefulSet controller makes
    them, and when the API server refuses them (a label too long, an admission webhook) it says so only in
    its FailedCreate Events on the group's worker StatefulSet, `<lws>-<groupIndex>`, so the placement points there."""
    if count_at(obj, f"{_LWT}.size", 1, minimum=1) < 2:
        return ""
    leaders, with_workers = set(), set()
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        group = labels.get(GROUP_INDEX_LABEL)
        if group is None:
            continue
        if labels.get(WORKER_INDEX_LABEL) == "0":
            if (pod.get("status") or {}).get("phase") == "Running":
                leaders.add(group)
        else:
            with_workers.add(group)
    alone = sorted(leaders - with_workers, key=lambda g: (len(g), g))
    if not alone:
        return ""
    name = (obj.get("metadata") or {}).get("name", "")
    who = f"group {alone[0]}'s leader runs but none of its" if len(alone) == 1 else \
        f"{len(alone)} groups' leaders run but none of their"
    were = "was" if len(alone) == 1 else "were"
    return (f"{who} worker pods {were} created; if that lasts, the member refuses them: the FailedCreate events of "
            f"StatefulSet {name}-{alone[0]} there say why")


__all__ = ["LeaderWorkerSetAdapter"]
