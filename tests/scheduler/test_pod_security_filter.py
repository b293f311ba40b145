"""The PodSecurity filter: a job goes only where the member's agent would launch it, by the level and allowances
its agent reports (labels federator.io/pod-security*); a cluster whose agent reports none is not filtered."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from federator.model import AcceleratorAlternative, ClusterInfo, JobKind, JobSpec, ReasonCode
from federator.scheduler import Scheduler, Snapshot
from federator.scheduler.framework import CycleContext
from federator.scheduler.plugins import FILTERS, PodSecurityFilter
from federator.security.podsecurity import PodSecurity, PodSecurityLevel
from federator.security.podsecurity_member import policy_labels

from builders import cluster, job, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
RESTRICTED_OK = {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                 "seccompProfile": {"type": "RuntimeDefault"}}


def member(name: str, policy: PodSecurity | None) -> ClusterInfo:
    c = cluster(name, "r", pool(H100, nodes=2))
    return replace(c, labels=tuple(policy_labels(policy).items())) if policy else c


def with_container(**security: Any) -> JobSpec:
    template = {"spec": {"containers": [{"name": "main", "image": "llm:1", "securityContext": security}]}}
    return replace(job("j", gpus=1), pod_template_json=json.dumps(template))


BASELINE = PodSecurity()
RESTRICTED = PodSecurity(level=PodSecurityLevel.RESTRICTED)
PRIVILEGED = PodSecurity(level=PodSecurityLevel.PRIVILEGED)
IPC_LOCK = {"capabilities": {"add": ["IPC_LOCK"]}}


@pytest.mark.parametrize(("spec", "policy", "passes"), [
    (with_container(), None, True),
    (with_container(privileged=True), None, True),
    (with_container(), BASELINE, True),
    (with_container(), RESTRICTED, False),
    (with_container(**RESTRICTED_OK), RESTRICTED, True),
    (with_container(privileged=True), BASELINE, False),
    (with_container(privileged=True), PRIVILEGED, True),
    (with_container(**IPC_LOCK), BASELINE, False),
    (with_container(**IPC_LOCK), PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"})), True),
    (with_container(**IPC_LOCK), PodSecurity(allowed_capabilities=frozenset({"NET_RAW"})), False),
    (with_container(**{**RESTRICTED_OK, "capabilities": {"drop": ["ALL"], "add": ["IPC_LOCK"]}}),
     PodSecurity(level=PodSecurityLevel.RESTRICTED, allowed_capabilities=frozenset({"IPC_LOCK"})), True),
    (job("default-container", gpus=1), RESTRICTED, False),
], ids=["unlabeled", "unlabeled-privileged", "baseline", "restricted-refuses-plain", "restricted-secured",
        "baseline-refuses-privileged", "privileged-takes-all", "baseline-refuses-ipc-lock",
        "ipc-lock-allowed", "another-capability-allowed", "restricted-with-ipc-lock",
        "restricted-refuses-the-default-container"])
def test_a_cluster_passes_exactly_when_its_agent_would_launch_the_job(spec: JobSpec, policy: PodSecurity | None,
                                                                      passes: bool) -> None:
    said = PodSecurityFilter().filter(request(spec), member("member-a", policy), CycleContext())
    assert (said is None) is passes, said


def test_the_reason_names_the_members_level_what_the_job_needs_and_the_field() -> None:
    said = PodSecurityFilter().filter(request(with_container(privileged=True)), member("member-a", BASELINE),
                                      CycleContext())
    assert said is not None and said.code is ReasonCode.POD_SECURITY
    assert str(said) == ("PodSecurity: member-a enforces baseline; the job needs privileged "
                         "(spec.template.spec.containers[0].securityContext.privileged)")


def test_a_capability_the_job_needs_is_named_as_what_would_admit_it() -> None:
    said = PodSecurityFilter().filter(request(with_container(**IPC_LOCK)), member("member-a", BASELINE),
                                      CycleContext())
    assert said is not None
    assert said.message == ("member-a enforces baseline; the job needs baseline with IPC_LOCK "
                            "(spec.template.spec.containers[0].securityContext.capabilities.add[0])")


def test_the_job_goes_to_the_member_that_admits_it_and_waits_with_the_reason_when_none_does() -> None:
    privileged = with_container(privileged=True)
    result = Scheduler().schedule(Snapshot.of([member("strict", RESTRICTED), member("open", PRIVILEGED)]),
                                  [request(privileged)])
    assert [d.assignments[0].cluster for d in result.decisions] == ["open"]
    result = Scheduler().schedule(Snapshot.of([member("strict", RESTRICTED), member("base", BASELINE)]),
                                  [request(privileged)])
    assert not result.decisions
    assert result.pending["j"].code is ReasonCode.POD_SECURITY
    assert "base enforces baseline; the job needs privileged" in result.pending["j"].message


def test_an_alternatives_own_template_is_what_the_member_is_asked_to_admit() -> None:
    """The Ascend alternative's template adds IPC_LOCK over the job's plain one: only that alternative is
    refused by a baseline member, so the job runs there with its first alternative."""
    over = json.dumps({"spec": {"containers": [{"securityContext": IPC_LOCK}]}})
    base = json.dumps({"spec": {"containers": [{"name": "main", "image": "llm:1"}]}})
    spec = replace(job("j", kind=JobKind.TRAINING), pod_template_json=base,
                   accelerators=(AcceleratorAlternative(1000, model="Ascend910B", pod_template_json=over),
                                 AcceleratorAlternative(1000, model=H100)))
    result = Scheduler().schedule(Snapshot.of([member("m", BASELINE)]), [request(spec)])
    (decision,) = result.decisions
    assert decision.assignments[0].alternative == 1


def test_two_jobs_alike_but_for_their_templates_are_judged_apart() -> None:
    """The filter's verdict is cached per request shape: the shape must tell the templates' needs apart."""
    result = Scheduler().schedule(Snapshot.of([member("m", BASELINE)]),
                                  [request(replace(with_container(privileged=True), name="bad"), at=0),
                                   request(replace(with_container(), name="good"), at=1)])
    assert [d.job_id for d in result.decisions] == ["good"]
    assert result.pending["bad"].code is ReasonCode.POD_SECURITY


def test_the_filter_is_on_by_default() -> None:
    assert "PodSecurity" in FILTERS
    assert any(f.name == "PodSecurity" for f in Scheduler().filters)
