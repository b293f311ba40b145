"""A job may not take the priority classes every cluster keeps for its own critical pods (red team).

`system-node-critical` and `system-cluster-critical` exist on every member and, without admission configuration
a provider rarely has, any namespace may use them: a job's pod holding one preempts whatever shares its node --
other organisations' placements, the provider's own work -- around the federator's queues and fair share. Refused
at baseline and stricter, at submit and by the member's agent, naming the field."""

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


def _pod(priority: str) -> dict[str, Any]:
    return {"spec": {"priorityClassName": priority, "containers": [{"name": "main", "image": "llm:1"}]}}


def _job(**spec: Any) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "p"},
                      "spec": {"kind": "inference", "replicas": 1, "resources": {"cpu": "1"}, **spec}})


@pytest.mark.parametrize("priority", ["system-node-critical", "system-cluster-critical"])
def test_a_system_priority_class_is_refused_at_submit_naming_the_field(priority: str) -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits())
    with pytest.raises(SubmitError) as err:
        fed.submit(_job(template=_pod(priority)))
    assert str(err.value).startswith('spec.template.spec.priorityClassName: not allowed under pod security '
                                     f'"baseline" ({priority!r} is for the cluster\'s own pods')
    assert not fed.jobs


def test_a_members_own_priority_class_is_its_business_and_privileged_allows_all() -> None:
    assert make(MemoryStore(), Clock(), limits=Limits()).submit(_job(template=_pod("high"))).job_id
    anything = Limits(pod_security=PodSecurity(level=PodSecurityLevel.PRIVILEGED))
    assert make(MemoryStore(), Clock(), limits=anything).submit(_job(template=_pod("system-node-critical"))).job_id



def test_the_members_agent_refuses_a_stored_job_with_a_system_priority_class() -> None:
    """A job the federator stored at privileged, or before this rule: the member's own level refuses it."""
    api = RecordingApi()
    b = started_backend(api)
    spec = JobSpec(name="p", kind=JobKind.INFERENCE, replicas=1, resources=Resources(cpu_milli=1000),
                   pod_template_json=json.dumps(_pod("system-node-critical")))
    why = asyncio.run(b.launch(Placement(PlacementId("p-abc.g1.a"), JobId("p-abc"), "member-a", "east", 1, "", 1),
                               spec))
    assert api.created == []
    assert why is not None and "spec.template.spec.priorityClassName: not allowed" in why
