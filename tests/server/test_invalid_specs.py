"""Whose word fails a job as invalid (server/invalid_specs.py): two providers' clusters, or the one provider there
is; a cluster whose `invalid` another provider contradicts has cost a refusal, and nothing more."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, capacity, make, spec

from federator.model import JobPhase, ReasonCode
from federator.security.trust import PROVIDER_LABEL
from federator.server.federator import ClusterRecord, Federator
from federator.server.invalid_specs import found_invalid, judge

WORDS = "spec.template.spec.containers[0].env[0].name: Invalid value: \"1-BAD\": a valid environment variable name"


@pytest.mark.parametrize(("said", "others", "fail", "says"), [
    ({"a": ("acme", WORDS)}, {"gx"}, False, "a (provider acme) found the job invalid; trying a cluster of another"),
    ({"a": ("acme", WORDS)}, {"acme"}, True, "no cluster of another provider is Ready to confirm it"),
    ({"a": ("acme", WORDS)}, set(), True, "no cluster of another provider is Ready to confirm it"),
    ({"b": ("gx", "x"), "a": ("acme", WORDS)}, {"gx"}, True, "a (provider acme) and b (provider gx) refused it"),
    ({"b": ("acme", "x"), "a": ("acme", WORDS)}, {"acme", "gx"}, False, "trying a cluster of another provider"),
    ({"a": ("", WORDS)}, {""}, True, "a refused it as invalid, and no cluster of another provider"),
], ids=["other-provider-asked", "only-own-provider", "alone", "second-provider-agrees", "same-provider-twice",
        "federations-own"])
def test_judge(said: dict[str, tuple[str, str]], others: set[str], fail: bool, says: str) -> None:
    verdict = judge(said, cluster="a", others_ready=others)
    assert verdict.fail is fail and verdict.reason.code is ReasonCode.INVALID_SPEC
    assert says in verdict.reason.message and WORDS in verdict.reason.message


def member(fed: Federator, name: str, provider: str) -> ClusterRecord:
    rec = fed.connect(cluster=name, region="r", labels={PROVIDER_LABEL: provider})
    fed.report(rec, capacity())
    return rec


def test_a_cluster_another_provider_contradicts_cost_a_refusal_and_its_word_is_forgotten() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    acme, gx = member(fed, "acme-1", "acme"), member(fed, "gx-1", "gx")
    job = fed.submit(spec("fine"))
    fed.schedule_once()
    (p,) = job.placements
    first, other = (acme, gx) if p.cluster == "acme-1" else (gx, acme)
    found_invalid(fed, first, p.placement_id, WORDS)
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.INVALID_SPEC and "to confirm" in job.pending_reason.message
    assert fed.refusals.avoided(job.job_id, clock()) == (first.name,)  # kept off as after a refusal
    fed.schedule_once()  # at once, on the other provider's cluster
    (q,) = job.placements
    assert q.cluster == other.name
    fed.acked(other, q.placement_id)
    fed.job_update(other, q.placement_id, JobPhase.RUNNING, "")
    assert job.phase is JobPhase.RUNNING
    clock.now += 20
    fed.job_update(other, q.placement_id, JobPhase.CANCELLED, "evicted by the member's preemption")
    clock.now += 15  # past the first cluster's 30 s back-off, within the other's (from its eviction)
    fed.schedule_once()
    (r,) = job.placements
    assert r.cluster == first.name
    found_invalid(fed, first, r.placement_id, WORDS)  # its word again: the run on `other` contradicted it
    fed.schedule_once()
    assert job.phase is JobPhase.PENDING  # not Failed: one provider's word since the job last ran
    clock.now += 30  # the other's back-off over, the first's (its second refusal) not
    fed.schedule_once()
    assert [pl.cluster for pl in job.placements] == [other.name]


def test_an_invalid_for_another_clusters_placement_changes_nothing() -> None:
    fed = make(MemoryStore(), Clock())
    acme, gx = member(fed, "acme-1", "acme"), member(fed, "gx-1", "gx")
    job = fed.submit(spec("victim"))
    fed.schedule_once()
    (p,) = job.placements
    stranger = gx if p.cluster == "acme-1" else acme
    for _ in range(3):
        found_invalid(fed, stranger, p.placement_id, WORDS)
    fed.schedule_once()
    assert job.phase is JobPhase.PLACED and [pl.placement_id for pl in job.placements] == [p.placement_id]


def test_a_spread_job_whose_other_part_runs_is_not_invalid_its_clusters_answer_is_a_refusal() -> None:
    """A part Running elsewhere is the job's object made and run there: an `invalid` for another part is that
    cluster's refusal (one provider here, so the word would otherwise have failed the job)."""
    from test_partial_failover import spread_over_a_and_b

    clock = Clock()
    fed = make(MemoryStore(), clock)
    job, a, _ = spread_over_a_and_b(fed)
    (mine,) = [p for p in job.placements if p.cluster == "a"]
    found_invalid(fed, a, mine.placement_id, WORDS)
    assert fed.refusals.condemned(job.job_id) is None
    assert fed.metrics.registry.get_sample_value("federator_placements_total", {"result": "refused"}) == 1.0
    assert job.phase is JobPhase.RUNNING and [p.cluster for p in job.placements] == ["b"]
    assert fed.refusals.avoided(job.job_id, clock()) == ("a",)
