"""batch/v1 Job: the default shape of a training placement, and a kind users may bring.

A placement the federator renders from `kind`/`replicas`/`resources`/`template`
becomes an Indexed Job with parallelism = completions = replicas and
backoffLimit 0 (a gang is all or nothing: one replica failing fails the
placement, and the federator decides what happens next). Any Indexed Job gets
the rendezvous env, and one of more than one pod its DNS names (`rendezvous.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from federator.backends.kube.workloads.adapter import TemplatedAdapter, condition, pods_phase, said
from federator.backends.kube.workloads.common import Obj, PodSet, RenderOptions, count_at, template_pod_set
from federator.backends.kube.workloads.rendezvous import apply_rendezvous, is_indexed
from federator.model import JobKind, JobPhase, Placement


@dataclass(frozen=True, slots=True)
class BatchJobAdapter(TemplatedAdapter):
    api_version: str = "batch/v1"
    kind: str = "Job"
    plural: str = "jobs"
    job_kind: JobKind = JobKind.TRAINING
    # A multi-pod gang's rendezvous Service takes the Job's name, and a Service name is an RFC 1035 label (it
    # starts with a letter): a job named "70b-sft" had its Service refused by the member's API server.
    dns1035: ClassVar[bool] = True

    def pod_sets(self, obj: Mapping[str, Any]) -> list[PodSet]:
        parallelism = count_at(obj, "spec.parallelism", 1)
        completions = count_at(obj, "spec.completions", parallelism)
        return [template_pod_set(obj, "spec.template", name="main", count=min(parallelism, completions))]

    def finish(self, obj: Obj, placement: Placement, sets: list[PodSet], options: RenderOptions) -> None:
        pod = obj["spec"]["template"].setdefault("spec", {})
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            pod["restartPolicy"] = "Never"  # a Job refuses Always
        if is_indexed(obj):
            apply_rendezvous(obj, port=options.master_port, procs=options.procs_per_replica)

    def phase(self, obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[JobPhase, str]:
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        want = int(spec.get("completions") or spec.get("parallelism") or 1)
        if condition(obj, "Complete") or condition(obj, "SuccessCriteriaMet"):
            return JobPhase.SUCCEEDED, f"{status.get('succeeded', want)} of {want} replicas completed"
        failed = condition(obj, "Failed") or condition(obj, "FailureTarget")
        if failed:
            return JobPhase.FAILED, said(failed, "Failed")
        phase, message = pods_phase(obj, pods, done=int(status.get("succeeded") or 0))
        tries = int(status.get("failed") or 0)
        if tries:  # a Job that retries its pods itself (a brought one's backoffLimit): "running" alone hid the
            # crash loop (outside QA, ML user F8)
            message += f"; {tries} pod{'s' if tries > 1 else ''} failed so far (backoffLimit " \
                       f"{spec.get('backoffLimit', 6)}: the Job retries them)"
        return phase, message


__all__ = ["BatchJobAdapter"]
