"""A job may not pick its node itself nor tolerate its way onto a provider's control plane (red team, left over).

`nodeName` skips the member's scheduler, and with it Kueue's or the gang timeout's all-or-nothing and the member's
quotas; a toleration of the control-plane taint (or of every taint) with a node selector puts a tenant's pod on
the provider's control-plane nodes. Refused at baseline and stricter, at submit and by the member's agent, naming
the field; a toleration of a named taint of the member's own (a dedicated pool's) stays the job's business."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources
from federator.security.limits import Limits
from federator.security.podsecurity import PodSecurity, PodSecurityLevel
from federator.server.intake import SubmitError

from kube_fakes import RecordingApi, started_backend


def _pod(**spec: Any) -> dict[str, Any]:
    return {"spec": {**spec, "containers": [{"name": "main", "image": "llm:1"}]}}


def _job(template: dict[str, Any]) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "p"},
                      "spec": {"kind": "inference", "replicas": 1, "resources": {"cpu": "1"}, "template": template}})


@pytest.mark.parametrize(("spec", "field", "why"), [
    ({"nodeName": "cp-0"}, "spec.template.spec.nodeName", "the member's scheduler picks the node"),
    ({"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                       "effect": "NoSchedule"}]},
     "spec.template.spec.tolerations[0]", "control-plane nodes)"),
    ({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml"}, {"operator": "Exists"}]},
     "spec.template.spec.tolerations[1]", "control-plane nodes, with every other)"),
    ({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]},
     "spec.template.spec.tolerations[0]", "a cordoned node"),
    ({"volumes": [{"name": "src", "gitRepo": {"repository": "https://example.com/x.git"}}]},
     "spec.template.spec.volumes[0].gitRepo", "CVE-2024-10220"),
], ids=["node-name", "control-plane-toleration", "every-taint", "cordoned-node-toleration", "git-repo-volume"])
def test_a_pod_that_picks_its_node_or_the_control_plane_is_refused_at_submit(spec: dict[str, Any], field: str,
                                                                            why: str) -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits())
    with pytest.raises(SubmitError) as err:
        fed.submit(_job(_pod(**spec)))
    assert str(err.value).startswith(f'{field}: not allowed under pod security "baseline"'), str(err.value)
    assert why in str(err.value)
    assert not fed.jobs


def test_a_named_toleration_is_the_jobs_business_and_privileged_allows_all() -> None:
    ok = _pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}])
    assert make(MemoryStore(), Clock(), limits=Limits()).submit(_job(ok)).job_id
    anything = Limits(pod_security=PodSecurity(level=PodSecurityLevel.PRIVILEGED))
    assert make(MemoryStore(), Clock(), limits=anything).submit(_job(_pod(nodeName="cp-0"))).job_id



def test_the_members_agent_refuses_a_stored_job_that_names_its_node() -> None:
    api = RecordingApi()
    b = started_backend(api)
    spec = JobSpec(name="p", kind=JobKind.INFERENCE, replicas=1, resources=Resources(cpu_milli=1000),
                   pod_template_json=json.dumps(_pod(nodeName="cp-0")))
    why = asyncio.run(b.launch(Placement(PlacementId("p-abc.g1.a"), JobId("p-abc"), "member-a", "east", 1, "", 1),
                               spec))
    assert api.created == []
    assert why is not None and "spec.template.spec.nodeName: not allowed" in why


@pytest.mark.parametrize(("field", "key"), [
    # A RayJob's submitterPodTemplate is not stamped by the agent: with another placement's id there, its pods were
    # counted as that placement's (red team).
    ("labels", "federator.io/placement-id"),
    # The agent's identity (backends/kube/agent_identity.py) on a template it does not stamp would pass those pods
    # off as another agent's, or as this one's.
    ("annotations", "federator.io/agent-namespace"),
])
def test_a_job_may_not_carry_the_marks_by_which_an_agent_knows_its_placements_pods(field: str, key: str) -> None:
    ray = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "r"},
           "spec": {"entrypoint": "python x.py",
                    "submitterPodTemplate": {"metadata": {field: {key: "victim.g1.a"}},
                                             "spec": {"containers": [{"name": "s", "image": "ray:2"}]}},
                    "rayClusterSpec": {"headGroupSpec": {"template": {"spec": {"containers": [
                        {"name": "head", "image": "ray:2", "resources": {"requests": {"cpu": "1"}}}]}}}}}}
    job = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "r"},
                     "spec": {"kind": "training", "workload": ray}})
    with pytest.raises(SubmitError) as err:
        make(MemoryStore(), Clock(), limits=Limits()).submit(job)
    assert str(err.value).startswith(f"spec.workload.spec.submitterPodTemplate.metadata.{field}[{key}]: is the "
                                     "agent's"), str(err.value)
