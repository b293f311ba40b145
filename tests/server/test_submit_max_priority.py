"""Submit refuses a `spec.priority` above its queue's maxPriority (security finding M1: the tenant chose its
priority alone, and a higher one preempts another organisation's work). The bound: the queue's maxPriority,
else defaultQueue's, else 0 in a multi-tenant policy (tenancy, or access lists) and the whole range in one
without, so a single-tenant federator keeps working as before."""

from __future__ import annotations

import asyncio

import pytest
from server_support import Clock, MemoryStore, make
from test_api_limits import _bad_request, _refusal
from test_services_edge import good_spec, served

from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.scheduler import Scheduler
from federator.scheduler.policy import PolicyError, parse_policy
from federator.server.intake import SubmitError

TENANTS = """
tenancy: {admins: {users: [admin]}}
queues:
  research: {maxPriority: 100}
  open: {}
"""


def _job(name: str, priority: int, queue: str = "open") -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}, "priority": priority,
                               "queue": queue}})


def _submit(policy: str, spec: JobSpec) -> str:
    """'' if accepted, else the refusal."""
    fed = make(MemoryStore(), Clock())
    fed.set_scheduler_config(parse_policy(policy))
    try:
        fed.submit(spec)
    except SubmitError as err:
        assert not fed.jobs
        assert fed.metrics.messages_rejected.labels("limit_exceeded")._value.get() == 1
        return str(err)
    return ""


def test_a_multi_tenant_policy_bounds_a_queue_without_a_max_priority_at_0() -> None:
    said = _submit(TENANTS, _job("top", 1_000_000))
    assert said.startswith("spec.priority: 1000000 is above the highest queue 'open' allows, 0 (the default "
                           "maxPriority of a policy with tenancy or access lists)")
    assert _submit(TENANTS, _job("zero", 0)) == ""
    assert _submit(TENANTS, _job("low", -50)) == ""  # a tenant still orders its own jobs below the bound


def test_a_queues_max_priority_is_its_bound() -> None:
    assert _submit(TENANTS, _job("at", 100, "research")) == ""
    assert "above the highest queue 'research' allows, 100 (queue 'research' maxPriority)" in \
        _submit(TENANTS, _job("over", 101, "research"))


def test_default_queue_max_priority_bounds_the_unlisted_queues() -> None:
    policy = "defaultQueue: {maxPriority: 10}"
    assert "allows, 10 (defaultQueue.maxPriority)" in _submit(policy, _job("j", 11, "anything"))


def test_an_access_list_alone_makes_the_policy_multi_tenant() -> None:
    policy = "queues: {team: {access: {users: [alice]}}}"
    assert "allows, 0" in _submit(policy, _job("j", 1, "team"))


def test_a_single_tenant_policy_keeps_the_whole_range() -> None:
    assert _submit("queues: {a: {weight: 2}}", _job("top", 1_000_000, "a")) == ""
    assert Scheduler().config.max_priority("default") == (1_000_000, "the default maxPriority of a policy without "
                                                                       "tenancy")


def test_max_priority_is_checked_in_the_policy_naming_the_field() -> None:
    with pytest.raises(PolicyError, match=r"queues\.a\.maxPriority: must be an integer from -1,000,000 to "
                                          r"1,000,000"):
        parse_policy("queues: {a: {maxPriority: 2000000}}")
    with pytest.raises(PolicyError, match=r"defaultQueue\.maxPriority: must be an integer"):
        parse_policy("defaultQueue: {maxPriority: high}")


def test_over_the_api_the_refusal_is_invalid_argument_naming_spec_priority() -> None:
    async def main() -> None:
        async with served() as s:
            s.fed.set_scheduler_config(parse_policy(TENANTS))
            err = await asyncio.to_thread(_refusal, s.target, good_spec("hog", priority=1_000_000))
            assert (err.details() or "").startswith("spec.priority: 1000000 is above the highest queue "  # type: ignore[attr-defined]
                                                    "'default' allows, 0")
            assert [v.field for v in _bad_request(err).field_violations] == ["spec.priority"]
            assert not s.fed.jobs

    asyncio.run(main())
