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
