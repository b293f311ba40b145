"""Kubeflow training kinds: PyTorchJob (kubeflow.org/v1) and TrainJob (trainer.kubeflow.org/v1alpha1).

A PyTorchJob lists its pod templates per replica type (Master, Worker); the
training operator wires the rendezvous itself.

A TrainJob names a training runtime that holds the pod templates; the
federator cannot see runtimes (they live in member clusters), so it reads a
TrainJob's needs from the job itself: `spec.trainer.numNodes` pods, each
asking for `spec.trainer.resourcesPerNode`; both are required. The chosen
accelerator's node selector goes in through `spec.podSpecOverrides` on the
runtime's trainer job ("node"), and the placement labels through `spec.labels`
(which the trainer copies onto the JobSet it makes).

Nothing copies the placement annotation onto a TrainJob's pods: Trainer v2.0.0
puts `spec.labels`/`spec.annotations` on the JobSet only, the JobSet controller
does not pass a JobSet's own metadata on, and `spec.podSpecOverrides` has no pod
metadata. The pods do carry the JobSet's name, which is the TrainJob's
(`TRAINJOB_POD_LABEL`): the agent finds them by it (`trainjob_of_pod`). Trainer
v2.0.0 never fills `status.jobsStatus`, so between start and the `Complete` or
`Failed` condition the phase comes from those pods.

Names: the training operator and Trainer both want an RFC 1035 name. Trainer
names the JobSet it makes after the TrainJob, whose webhook then checks its
pods' names (jobset.NAME_BUDGET): a TrainJob's copy has `TRAINJOB_NAME_BUDGET`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from federator.backends.kube.accelerators import AcceleratorRequest
from federator.backends.kube.workloads.adapter import TemplatedAdapter, condition, pods_phase, require, said
from federator.backends.kube.workloads.common import (
    DEFAULT_OPTIONS,
    Obj,
    PodSet,
    RenderOptions,
    WorkloadError,
    container_ask,
    count_at,
    counted_sets,
    mapping_at,
    member_name,
    placement_metadata,
    render_accelerators,
    template_pod_set,
    workload_labels,
)
from federator.elastic_policy import SCALED_ROLE
from federator.model import JobKind, JobPhase, Placement
from federator.partition_asks import TRAINJOB_WHOLE_DEVICES

TRAINER_JOB = "node"  # the trainer's job in Kubeflow's torch and MPI runtimes
#: The label the JobSet controller puts on every pod: the JobSet's name, which Trainer v2 makes the TrainJob's.
TRAINJOB_POD_LABEL = "jobset.sigs.k8s.io/jobset-name"
TRAINJOB_NAME_BUDGET = 33
"""The longest name of a member's copy of a TrainJob. Trainer (v2.0.0) makes a JobSet of the TrainJob's name with
its runtime's replicated Jobs, and JobSet's webhook refuses it when `<jobset>-<replicatedJob>-0-0-abcde` passes
63 characters (jobset.NAME_BUDGET); the longest replicated Job of Trainer's own runtimes and initializers is
"dataset-initializer" (pkg/constants `DatasetInitializer`): 63 - 30 = 33."""


@dataclass(frozen=True, slots=True)
class PyTorchJobAdapter(TemplatedAdapter):
    api_version: str = "kubeflow.org/v1"
    kind: str = "PyTorchJob"
    plural: str = "pytorchjobs"
    job_kind: JobKind = JobKind.TRAINING
    dns1035: ClassVar[bool] = True  # the training operator's webhook: NameIsDNS1035Label

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        specs = require(mapping_at(obj, "spec", required=False).get("pytorchReplicaSpecs"), "spec.pytorchReplicaSpecs")
        if not specs:
            raise WorkloadError("spec.pytorchReplicaSpecs", "must have at least one replica type (Master, Worker)")
        out = []
        for role in sorted(specs, key=lambda r: (r != "Master", r)):
            at = f"spec.pytorchReplicaSpecs.{role}"
            require(specs[role], at)
            out.append(template_pod_set(obj, f"{at}.template", name=role, count=count_at(obj, f"{at}.replicas", 1)))
        return out

    def scale(self, obj: Obj, placement: Placement) -> None:
        """An elastic gang placed below its size (JobSpec.min_replicas, from its elasticPolicy): its Workers at the
        count placed less its other counted roles' pods, which the federator never shrinks (jobfile.elastic_minimum).
        A placement of the whole gang leaves the object as written.

        The elasticPolicy comes down with the Workers: `maxReplicas` to the Workers placed (and `minReplicas` where
        it was above them). The training operator (v1.9.3) makes an HPA on the Workers' count from the policy when
        it has `metrics`, so a policy left at the whole gang's size let the member add back Workers the federator
        never reserved, counted against a quota or billed (outside QA, elasticqa63 3)."""
        counted = counted_sets(self.pod_sets(obj))  # the pods the federator counts as replicas (a GPU Master too)
        if SCALED_ROLE not in {p.name for p in counted}:
            return
        others = sum(p.count for p in counted if p.name != SCALED_ROLE)
        workers = placement.replicas - others
        if workers >= sum(p.count for p in counted if p.name == SCALED_ROLE):
            return
        if workers < 1:
            raise WorkloadError(f"spec.pytorchReplicaSpecs.{SCALED_ROLE}.replicas",
                                f"a placement of {placement.replicas} pods leaves no Worker beside the {others} "
                                "pods of the other roles")
        obj["spec"]["pytorchReplicaSpecs"][SCALED_ROLE]["replicas"] = workers
        policy = obj["spec"].get("elasticPolicy")
        if isinstance(policy, dict):
            policy["maxReplicas"] = workers
            low = policy.get("minReplicas")
            if isinstance(low, (int, float)) and not isinstance(low, bool) and low > workers:
                policy["minReplicas"] = workers

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        if done := condition(obj, "Succeeded"):
            return JobPhase.SUCCEEDED, said(done, "Succeeded")
        if failed := condition(obj, "Failed"):
            return JobPhase.FAILED, said(failed, "Failed")
        return pods_phase(obj, pods)


@dataclass(frozen=True, slots=True)
class TrainJobAdapter:
    api_version: str = "trainer.kubeflow.org/v1alpha1"
    kind: str = "TrainJob"
    plural: str = "trainjobs"
    job_kind: JobKind = JobKind.TRAINING

    @property
    def group(self) -> str:
        return "trainer.kubeflow.org"

    @property
    def key(self) -> str:
        return f"{self.kind}.{self.group}"

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        trainer = require(mapping_at(obj, "spec", required=False).get("trainer"), "spec.trainer")
        if trainer.get("numNodes") is None:
            raise WorkloadError("spec.trainer.numNodes", "is required: the federator cannot read the runtime's "
                                                         "default from here")
        nodes = count_at(obj, "spec.trainer.numNodes", 1, minimum=1)
        if trainer.get("resourcesPerNode") is None:
            raise WorkloadError("spec.trainer.resourcesPerNode", "is required: what each node asks for "
                                                                 "(the runtime's template is not visible here)")
        per, accelerator = container_ask(trainer["resourcesPerNode"], "spec.trainer.resourcesPerNode")
        return [PodSet(name=TRAINER_JOB, count=nodes, resources=per, path="spec.trainer",
                       accelerator_resource=accelerator)]

    def group_size(self, obj: Mapping[str, Any]) -> int:
        return 1

    def member_name(self, placement_id: str) -> str:
        return member_name(placement_id, TRAINJOB_NAME_BUDGET, dns1035=True)

    def check_names(self, obj: Mapping[str, Any]) -> None:
        """The runtime's replicated Jobs are not visible here (see the module doc)."""

    def render(self, obj: Mapping[str, Any], placement: Placement, *, namespace: str,
               options: RenderOptions = DEFAULT_OPTIONS) -> Obj:
        out: Obj = copy.deepcopy(dict(obj))
        sets = self.pod_sets(out)
        placement_metadata(out, placement, namespace, pods=sum(p.count for p in sets),
                           name=self.member_name(placement.placement_id))
        out["metadata"]["labels"].update(options.labels)
        out["metadata"]["annotations"].update(options.annotations)  # its pods carry nothing of it (above)
        spec = out.setdefault("spec", {})
        spec["labels"] = {**(spec.get("labels") or {}), **workload_labels(placement)}
        if sets[0].resources.accelerator_milli and placement.accelerator_model:
            whole_devices_only(options.accelerator, sets[0].accelerator_resource, placement.accelerator_model)
            for at, own in _trainer_overrides(spec):  # the trainer merges ours after: never over the user's pin
                render_accelerators(copy.deepcopy(dict(own)), [], resources=None, model=placement.accelerator_model,
                                    accelerator=options.accelerator, at=f"spec.workload.{at}")
            override: Obj = {"targetJobs": [{"name": TRAINER_JOB}]}
            render_accelerators(override, [], resources=None, model=placement.accelerator_model,
                                accelerator=options.accelerator)
            spec["podSpecOverrides"] = [*(spec.get("podSpecOverrides") or []), override]
        return out

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        if done := condition(obj, "Complete"):
            return JobPhase.SUCCEEDED, said(done, "Complete")
        if failed := condition(obj, "Failed"):
            return JobPhase.FAILED, said(failed, "Failed")
        if suspended := condition(obj, "Suspended"):
            return JobPhase.PLACED, said(suspended, "Suspended")
        # Not jobsStatus: its `active` counts child Jobs with a pod pending or running, so a gang half bound
        # read as running (and v2.0.0 leaves it empty). The pods of its JobSet say (the agent finds them).
        return pods_phase(obj, pods)

    def counts(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[int, int] | None:
        return None  # a gang: its phase says whether it runs


TRAINJOB_KEY = TrainJobAdapter().key


RESOURCES_PER_NODE = "spec.workload.spec.trainer.resourcesPerNode"


def whole_devices_only(request: AcceleratorRequest | None, asked: str, model: str) -> None:
    """A placement on a pool whose pods ask something else than the trainer's `asked` resource (a MIG profile's or
    a vNPU template's own resource, a DRA claim) refused naming `resourcesPerNode`. The agent writes a brought
    workload's own device asks over with the partition's (common.py `render_accelerators`), but a TrainJob's pods
    are made by its runtime from `resourcesPerNode`: left as asked, they stayed Pending on a MIG node, or ran on
    whole chips of a vNPU node while the partition pool was booked and billed."""
    if request is None or (not request.uses_dra and (not request.limits or asked in request.limits)):
        return
    pool = "a DRA claim" if request.uses_dra else ", ".join(sorted(request.limits))
    raise WorkloadError(RESOURCES_PER_NODE, (
        f"asks {asked or 'no device resource'}, but this placement's pool {model} is asked as {pool}: "
        f"{TRAINJOB_WHOLE_DEVICES}; name a whole device in spec.acceleratorModels, or declare the job without "
        "spec.workload"))


def _trainer_overrides(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(path, pod spec) of each of the user's overrides (podSpecOverrides, or podTemplateOverrides' spec) that
    targets the trainer's job, whose pods the agent pins to the placed pool."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for key, inner in (("podSpecOverrides", ""), ("podTemplateOverrides", "spec")):
        items = spec.get(key)
        for i, item in enumerate(items if isinstance(items, list) else ()):
            targets = item.get("targetJobs") if isinstance(item, Mapping) else None
            if not any(isinstance(t, Mapping) and t.get("name") == TRAINER_JOB
                       for t in (targets if isinstance(targets, list) else ())):
                continue
            pod = item.get(inner) if inner else item
            if isinstance(pod, Mapping):
                found.append((f"spec.{key}[{i}]{'.' + inner if inner else ''}", pod))
    return found


def trainjob_of_pod(pod: Mapping[str, Any]) -> str:
    """The name of the TrainJob whose JobSet made this pod ("" if none; see the module doc)."""
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(TRAINJOB_POD_LABEL, ""))


__all__ = ["RESOURCES_PER_NODE", "TRAINER_JOB", "TRAINJOB_KEY", "TRAINJOB_NAME_BUDGET", "TRAINJOB_POD_LABEL",
           "PyTorchJobAdapter", "TrainJobAdapter", "trainjob_of_pod", "whole_devices_only"]
