"""A job whose template's limits are below what the agent requests for its first container is refused at submit.

Outside QA on real members: spec.resources asked 4 CPUs and 32Gi, the template's container limited itself to 2 and
8Gi; the federator accepted it, every member's API server refused the Deployment (HTTP 422: a request above its
limit), and the job was placed again for ever. The agent writes spec.resources as the first container's requests
(without a workload object), so the conflict is known at submit."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job
from federator.security.limits import Limits
from federator.server.intake import SubmitError


def _job(limits: dict[str, str]) -> object:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "chat"},
                      "spec": {"kind": "inference", "replicas": 2, "resources": {"cpu": "4", "memory": "32Gi"},
                               "template": {"spec": {"containers": [
                                   {"name": "m", "image": "llm:1", "resources": {"limits": limits}}]}}}})


def test_limits_below_the_requests_the_agent_writes_are_refused_naming_each_field() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits())
    with pytest.raises(SubmitError) as err:
        fed.submit(_job({"cpu": "2", "memory": "8Gi"}))  # type: ignore[arg-type]
    problems = [(p.field, p.problem) for p in err.value.__cause__.problems]  # type: ignore[union-attr]
    assert problems == [
        ("spec.template.spec.containers[0].resources.limits.cpu",
         "2 is below spec.resources.cpu (4), which the agent requests for this container: raise the limit, or "
         "lower spec.resources"),
        ("spec.template.spec.containers[0].resources.limits.memory",
         "8Gi is below spec.resources.memory (32Gi), which the agent requests for this container: raise the "
         "limit, or lower spec.resources")]
    assert not fed.jobs


def test_limits_at_or_above_the_requests_are_the_jobs_business() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits())
    assert fed.submit(_job({"cpu": "4", "memory": "64Gi"})).job_id  # type: ignore[arg-type]


def _jobset(resources: dict[str, dict[str, object]]) -> object:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "js"},
                      "spec": {"workload": {
                          "apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "js"},
                          "spec": {"replicatedJobs": [{"name": "workers", "replicas": 1, "template": {"spec": {
                              "parallelism": 2, "completions": 2, "template": {"spec": {"containers": [
                                  {"name": "w", "image": "trainer:1", "resources": resources}]}}}}}]}}}})


def test_a_brought_workload_asking_an_accelerator_without_its_limit_is_refused_naming_the_field() -> None:
    """Outside QA, Kubernetes mode (F6): such a JobSet was placed, admitted by its member's Kueue, and its controller
    failed to make a Job over and over; every API server refuses the pod."""
    fed = make(MemoryStore(), Clock(), limits=Limits())
    with pytest.raises(SubmitError) as err:
        fed.submit(_jobset({"requests": {"cpu": "16", "nvidia.com/gpu": 8}}))  # type: ignore[arg-type]
    [problem] = err.value.__cause__.problems  # type: ignore[union-attr]
    assert problem.field == ("spec.workload.spec.replicatedJobs[0].template.spec.template.spec.containers[0]"
                             ".resources.limits")
    assert problem.problem.startswith("nvidia.com/gpu: requested (8) but not limited;")
    with pytest.raises(SubmitError) as err:
        fed.submit(_jobset({"requests": {"nvidia.com/gpu": 8}, "limits": {"nvidia.com/gpu": 4}}))  # type: ignore[arg-type]
    [problem] = err.value.__cause__.problems  # type: ignore[union-attr]
    assert problem.field.endswith(".resources.limits.nvidia.com/gpu") and "is not its request (8)" in problem.problem
    assert not fed.jobs


@pytest.mark.parametrize("resources", [
    {"requests": {"cpu": "16", "memory": "64Gi"}},  # no limits needed for CPU and memory
    {"limits": {"nvidia.com/gpu": 8}},  # the request defaults to the limit
    {"requests": {"nvidia.com/gpu": "8"}, "limits": {"nvidia.com/gpu": 8}},
], ids=["cpu-and-memory", "limit-alone", "equal"])
def test_a_brought_workload_the_api_server_takes_is_taken(resources: dict[str, dict[str, object]]) -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits())
    assert fed.submit(_jobset(resources)).job_id  # type: ignore[arg-type]
