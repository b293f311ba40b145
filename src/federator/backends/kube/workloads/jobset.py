"""JobSet (jobset.x-k8s.io/v1alpha2): a training gang of replicated Jobs.

Pod sets as Kueue counts them: per replicatedJob, replicas x the Job's
parallelism (at most its completions). The JobSet controller gives pods DNS
names itself (a headless Service named after the JobSet), so the federator adds
no rendezvous of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.backends.kube.workloads.adapter import TemplatedAdapter, condition, items, pods_phase, said
from federator.backends.kube.workloads.common import PodSet, count_at, template_pod_set
from federator.model import JobKind, JobPhase


@dataclass(frozen=True, slots=True)
class JobSetAdapter(TemplatedAdapter):
    api_version: str = "jobset.x-k8s.io/v1alpha2"
    kind: str = "JobSet"
    plural: str = "jobsets"
    job_kind: JobKind = JobKind.TRAINING

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        out = []
        for i, rjob in enumerate(items((obj.get("spec") or {}).get("replicatedJobs"), "spec.replicatedJobs")):
            at = f"spec.replicatedJobs[{i}]"
            replicas = count_at(obj, f"{at}.replicas", 1)
            parallelism = count_at(obj, f"{at}.template.spec.parallelism", 1)
            completions = count_at(obj, f"{at}.template.spec.completions", parallelism)
            out.append(template_pod_set(obj, f"{at}.template.spec.template", name=str(rjob.get("name") or i),
                                        count=replicas * min(parallelism, completions)))
        return out

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        if done := condition(obj, "Completed"):
            return JobPhase.SUCCEEDED, said(done, "Completed")
        if failed := condition(obj, "Failed"):
            return JobPhase.FAILED, said(failed, "Failed")
        return pods_phase(obj, pods)


__all__ = ["JobSetAdapter"]
