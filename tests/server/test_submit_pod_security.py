"""Submit holds every pod template of a job to the federator's pod security level (server/templates.py):
`spec.template`, each accelerator alternative's template as the agent merges it, and the pod templates inside
`spec.workload`. A refusal names each field; nothing is stored; the refusal is counted as pod_security. Over
the gRPC API the refusal is INVALID_ARGUMENT with the proto's field path. The FederatedJob path goes through
the same intake (tests/kube/test_kube_federation.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from server_support import Clock, MemoryStore, make
from test_api_limits import _bad_request, _refusal
from test_services_edge import good_spec, served

from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.security.limits import Limits
from federator.security.podsecurity import PodSecurity, PodSecurityLevel
from federator.server.intake import SubmitError

PRIVILEGED_CONTAINER = {"containers": [{"name": "main", "image": "llm:1", "securityContext": {"privileged": True}}]}


def _job(name: str = "pretrain", **spec: Any) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}, **spec}})


def _refused(spec: JobSpec, limits: Limits | None = None) -> str:
    fed = make(MemoryStore(), Clock(), limits=limits or Limits())
    with pytest.raises(SubmitError) as err:
        fed.submit(spec)
    assert not fed.jobs  # nothing stored
    assert fed.metrics.messages_rejected.labels("pod_security")._value.get() == 1
    return str(err.value)


def test_a_privileged_container_is_refused_at_submit_naming_the_field() -> None:
    said = _refused(_job(template={"spec": PRIVILEGED_CONTAINER}))
    assert said == ('spec.template.spec.containers[0].securityContext.privileged: not allowed under pod security '
                    '"baseline"')


def test_an_alternative_is_checked_as_the_agent_renders_it_and_blamed_only_for_its_own_fields() -> None:
    base = {"spec": {"hostPID": True, "containers": [{"name": "main", "image": "llm:cuda"}]}}
    added = {"capabilities": {"add": ["SYS_ADMIN"]}}
    over = {"spec": {"containers": [{"image": "llm:cann", "securityContext": added}]}}
    said = _refused(_job(template=base, accelerators=[{"model": "H100", "count": 8},
                                                      {"model": "Ascend910B", "count": 16, "template": over}]))
    assert said == ('spec.template.spec.hostPID: not allowed under pod security "baseline"; '
                    "spec.accelerators[1].template.spec.containers[0].securityContext.capabilities.add[0]: not "
                    "allowed under pod security \"baseline\" ('SYS_ADMIN'; the federator's operator may allow it: "
                    "federator serve --allow-capability SYS_ADMIN)")


def test_the_pod_templates_inside_a_workload_are_checked() -> None:
    workload = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
        "restartPolicy": "Never", "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "containers": [{"name": "main", "image": "llm:1", "resources": {"requests": {"cpu": "1"}}}]}}}}
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
                      "spec": {"workload": workload}})
    assert _refused(spec) == 'spec.workload.spec.template.spec.volumes[0].hostPath: not allowed under pod security ' \
                             '"baseline"'


def test_what_the_operator_allows_is_accepted_and_privileged_accepts_all() -> None:
    rdma = {"spec": {"hostNetwork": True, "containers": [
        {"name": "main", "image": "llm:1", "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}}}]}}
    allowing = Limits(pod_security=PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"}), allow_host_network=True))
    assert make(MemoryStore(), Clock(), limits=allowing).submit(_job(template=rdma)).job_id
    assert "spec.template.spec.hostNetwork" in _refused(_job(template=rdma))  # not on the defaults
    anything = Limits(pod_security=PodSecurity(level=PodSecurityLevel.PRIVILEGED))
    assert make(MemoryStore(), Clock(), limits=anything).submit(_job(template={"spec": PRIVILEGED_CONTAINER})).job_id


def test_restricted_needs_a_template_since_the_default_container_sets_no_security_context() -> None:
    restricted = Limits(pod_security=PodSecurity(level=PodSecurityLevel.RESTRICTED))
    assert _refused(_job(), restricted).startswith('spec.template.spec.containers: must be given under pod security '
                                                   '"restricted"')
    assert make(MemoryStore(), Clock()).submit(_job()).job_id  # baseline: the default container is fine


def test_over_the_api_the_refusal_is_invalid_argument_naming_the_proto_field() -> None:
    async def main() -> None:
        async with served() as s:
            request = good_spec("priv")
            request.spec.pod_template_json = json.dumps({"spec": PRIVILEGED_CONTAINER})
            err = await asyncio.to_thread(_refusal, s.target, request)
            assert (err.details() or "").startswith(  # type: ignore[attr-defined]
                "spec.template.spec.containers[0].securityContext.privileged: not allowed "
                'under pod security "baseline"')
            assert [v.field for v in _bad_request(err).field_violations] == ["spec.pod_template_json"]
            assert not s.fed.jobs

    asyncio.run(main())


@pytest.mark.parametrize(("spec", "fields"), [
    ({"template": {"metadata": {"finalizers": ["example.com/keep"]}, "spec": {"containers": [{"name": "m"}]}}},
     ["spec.template.metadata.finalizers"]),
    ({"accelerators": [{"model": "H100", "count": 1, "template": {"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u"}]}}}]},
     ["spec.accelerators[0].template.metadata.ownerReferences"]),
    ({"workload": {"apiVersion": "batch/v1", "kind": "Job",
                   "metadata": {"finalizers": ["example.com/keep"],
                                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}]},
                   "spec": {"template": {"metadata": {"finalizers": ["example.com/pods"]}, "spec": {
                       "restartPolicy": "Never",
                       "containers": [{"name": "m", "resources": {"requests": {"cpu": "1"}}}]}}}}},
     ["spec.workload.metadata.finalizers", "spec.workload.metadata.ownerReferences",
      "spec.workload.spec.template.metadata.finalizers"]),
    ({"workload": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"namespace": "kube-system"},
                   "spec": {"template": {"metadata": {"namespace": "federator-workloads-other"}, "spec": {
                       "restartPolicy": "Never",
                       "containers": [{"name": "m", "resources": {"requests": {"cpu": "1"}}}]}}}}},
     ["spec.workload.metadata.namespace", "spec.workload.spec.template.metadata.namespace"]),
], ids=["template-finalizer", "alternative-owner-reference", "workload-and-its-pod-template", "workload-namespace"])
def test_finalizers_and_owner_references_in_a_job_are_refused_naming_the_field_whatever_the_level(
        spec: dict[str, Any], fields: list[str]) -> None:
    body: dict[str, Any] = {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}, **spec}
    if "workload" in spec:
        body = dict(spec)
    job = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "own"},
                     "spec": body})
    anything = Limits(pod_security=PodSecurity(level=PodSecurityLevel.PRIVILEGED))
    fed = make(MemoryStore(), Clock(), limits=anything)
    with pytest.raises(SubmitError) as err:
        fed.submit(job)
    assert [p.field for p in err.value.__cause__.problems] == fields  # type: ignore[union-attr]
    assert str(err.value).startswith(f"{fields[0]}: not allowed in a job: ")
    assert not fed.jobs
    assert fed.metrics.messages_rejected.labels("invalid_job")._value.get() == 1
    empty = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "e"},
                       "spec": {"kind": "training", "resources": {"cpu": "1"},
                                "template": {"metadata": {"finalizers": []}, "spec": {"containers": [{"name": "m"}]}}}})
    assert fed.submit(empty).job_id  # an empty list holds nothing
