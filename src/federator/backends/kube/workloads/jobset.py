"""JobSet (jobset.x-k8s.io/v1alpha2): a training gang of replicated Jobs.

Pod sets as Kueue counts them: per replicatedJob, replicas x the Job's
parallelism (at most its completions). The JobSet controller gives pods DNS
names itself (a headless Service named after the JobSet), so the federator adds
no rendezvous of its own.

The JobSet's webhook refuses a JobSet whose pods' names would pass 63
characters, so the member's copy has a name of at most `NAME_BUDGET`, and a
JobSet whose replicated Jobs' names leave no room even then is refused before
anything is created (`check_names`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from federator.backends.kube.workloads.adapter import TemplatedAdapter, condition, items, pods_phase, said
from federator.backends.kube.workloads.common import PodSet, WorkloadError, count_at, mapping_at, template_pod_set
from federator.model import JobKind, JobPhase

DNS_LABEL = 63
NAME_BUDGET = 36
"""The longest name of a member's copy of a JobSet. JobSet's webhook (v0.10.1, pkg/webhooks/jobset_webhook.go,
`ValidateCreate`) refuses a JobSet when, for any replicated Job, the name of its last Job's last pod,
`<jobset>-<replicatedJob>-<jobIndex>-<podIndex>-abcde` (pkg/util/placement `GenPodName` and the 5 random
characters the Job controller adds), or of its last Job, `<jobset>-<replicatedJob>-<jobIndex>`, is not an
RFC 1035 label of at most 63 characters. 36 leaves 27 to the replicated Job: a name of 16 characters with
single-digit indexes, of 7 ("workers") with up to 100000 Jobs of a million pods each; and 27 of the placement's
id to read in `kubectl get` (the rest is a digest of it)."""
RANDOM_SUFFIX = "-abcde"  # the webhook's stand-in for the 5 random characters of a pod's name


def _longest_names(rjob: Mapping[str, Any], at: str, obj: Mapping[str, Any], jobset: str) -> list[str]:
    """The longest Job and pod names JobSet's webhook checks for one replicated Job (as `ValidateCreate` does:
    the pod name only for Indexed Jobs with completions set, Indexed being JobSet's default)."""
    replicas = count_at(obj, f"{at}.replicas", 1)
    job = f"{jobset}-{rjob.get('name') or ''}-{max(replicas - 1, 0)}"
    spec = (rjob.get("template") or {}).get("spec") or {}
    if spec.get("completionMode", "Indexed") != "Indexed" or spec.get("completions") is None:
        return [job]
    completions = count_at(obj, f"{at}.template.spec.completions", 1)
    return [job, f"{job}-{max(completions - 1, 0)}{RANDOM_SUFFIX}"]


@dataclass(frozen=True, slots=True)
class JobSetAdapter(TemplatedAdapter):
    api_version: str = "jobset.x-k8s.io/v1alpha2"
    kind: str = "JobSet"
    plural: str = "jobsets"
    job_kind: JobKind = JobKind.TRAINING
    name_budget: ClassVar[int] = NAME_BUDGET
    dns1035: ClassVar[bool] = True  # its pods' names are checked as RFC 1035 labels

    def check_names(self, obj: Mapping[str, Any]) -> None:
        """Refuse a JobSet whose replicated Jobs' names make pod names JobSet refuses, with a copy's name of
        `NAME_BUDGET` characters (the member would refuse it at every placement)."""
        jobs = mapping_at(obj, "spec", required=False).get("replicatedJobs")
        for i, rjob in enumerate(items(jobs, "spec.replicatedJobs")):
            at = f"spec.replicatedJobs[{i}]"
            longest = max(_longest_names(rjob, at, obj, "x" * NAME_BUDGET), key=len)
            if len(longest) > DNS_LABEL:
                name = str(rjob.get("name") or "")
                room = len(name) - (len(longest) - DNS_LABEL)
                raise WorkloadError(f"{at}.name", (
                    f"{name!r} is too long: JobSet names this replicated Job's pods "
                    "<jobset>-<replicatedJob>-<jobIndex>-<podIndex>-<5 random> and refuses names over "
                    f"{DNS_LABEL} characters; the member's copy of the JobSet is named in up to {NAME_BUDGET}, "
                    f"which leaves {max(room, 0)} characters to this name with its replicas and completions"))

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        out = []
        jobs = mapping_at(obj, "spec", required=False).get("replicatedJobs")
        for i, rjob in enumerate(items(jobs, "spec.replicatedJobs")):
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
