"""A job a cluster just refused (e.g. its gang timed out there) goes elsewhere first, if it can."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from federator.model import ClusterCapacity, JobId, JobPhase, Reason, ReasonCode
from federator.server.federator import Federator
from federator.server.refusals import (
    FAILED_EARLY,
    FIRST_REFUSAL_SECONDS,
    NOT_STARTED,
    REFUSED,
    WHY_CHARS,
    RecentRefusals,
)
from federator.store import SqliteJobStore

from builders import job as job_spec
from builders import pool

H100 = "NVIDIA-H100-80GB-HBM3"


def test_refusals_are_avoided_for_their_wait() -> None:
    r = RecentRefusals(cooldown=60)
    r.note(JobId("j"), "a", now=100)
    assert r.avoided(JobId("j"), 110) == ("a",)
    assert r.avoided(JobId("other"), 110) == ()
    assert r.avoided(JobId("j"), 161) == ()  # the cooldown is over
    assert not r.remembers(JobId("j"))


def _capacity(nodes: int) -> ClusterCapacity:
    return ClusterCapacity(
        accelerator_pools=(pool(H100, nodes=nodes),),
        cpu_milli_allocatable=10**6,
        cpu_milli_free=10**6,
        memory_bytes_allocatable=2**45,
        memory_bytes_free=2**45,
        node_cpu_milli_free_max=10**5,
        node_memory_bytes_free_max=2**42,
    )


def test_a_gang_stopped_by_its_cluster_is_placed_on_the_other_one(tmp_path: Path) -> None:
    clock = [1000.0]
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: clock[0])
    a = fed.connect(cluster="a", region="r", labels={})
    fed.report(a, _capacity(2))
    job = fed.submit(job_spec("gang", replicas=2, gpus=8, models=(H100,)))
    fed.schedule_once()
    first = job.placements[0]
    assert first.cluster == "a"
    b = fed.connect(cluster="b", region="r", labels={})
    fed.report(b, _capacity(1))  # too small for now
    fed.job_update(a, first.placement_id, JobPhase.CANCELLED, "refused: gang timeout on a: 1 of 2 pods bound")
    assert job.phase is JobPhase.PENDING
    fed.report(a, _capacity(2))
    fed.schedule_once()
    assert job.phase is JobPhase.PENDING  # a has room but refused it a moment ago; b is too small
    assert job.pending_reason is not None
    assert job.pending_reason.code in (ReasonCode.RECENTLY_REFUSED, ReasonCode.GANG_DOES_NOT_FIT,
                                       ReasonCode.INSUFFICIENT_ACCELERATORS), job.pending_reason
    fed.report(b, _capacity(2))
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == ["b"]


def test_each_refusal_doubles_how_long_the_cluster_is_avoided_up_to_the_cooldown() -> None:
    r = RecentRefusals(cooldown=100, first=30)
    j = JobId("j")
    r.note(j, "a", now=0)
    assert r.avoided(j, 29) == ("a",) and r.avoided(j, 30) == ()
    assert not r.remembers(j)
    r.note(j, "a", now=30)  # tried again there, refused again
    assert r.avoided(j, 89) == ("a",) and r.avoided(j, 90) == ()
    r.note(j, "a", now=90)
    assert r.avoided(j, 189) == ("a",) and r.avoided(j, 190) == ()  # 120 s, capped at 100
    r.note(j, "b", now=200)  # another cluster starts at the first step
    assert r.avoided(j, 229) == ("b",)
    r.forget(j)
    r.note(j, "a", now=300)  # a job's history ends with it
    assert r.avoided(j, 330) == ()


def test_a_pinned_job_its_only_cluster_refused_is_tried_there_again_after_the_first_step(tmp_path: Path) -> None:
    """Not after the whole cooldown: the refusal may have passed (here, say, a namespace made meanwhile)."""
    clock = [1000.0]
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: clock[0])
    a = fed.connect(cluster="a", region="r", labels={})
    fed.report(a, _capacity(2))
    b = fed.connect(cluster="b", region="r", labels={})
    fed.report(b, ClusterCapacity(accelerator_pools=(), cpu_milli_allocatable=10**6, cpu_milli_free=10**6,
                                  memory_bytes_allocatable=2**45, memory_bytes_free=2**45,
                                  node_cpu_milli_free_max=10**5, node_memory_bytes_free_max=2**42))
    job = fed.submit(job_spec("pinned", replicas=1, gpus=8, models=(H100,)))
    fed.schedule_once()
    [first] = job.placements
    assert first.cluster == "a"
    fed.refused(a, first.placement_id, 'namespaces "federator-workloads" not found')
    assert job.phase is JobPhase.PENDING
    clock[0] += FIRST_REFUSAL_SECONDS - 1
    fed.schedule_once()
    assert job.phase is JobPhase.PENDING and not [p for p in job.placements if p.phase.is_active]
    assert job.pending_reason is not None  # what `federator get` and the FederatedJob's status show: and why
    assert 'a refused this job a moment ago (namespaces "federator-workloads" not found)' in job.pending_reason.message
    clock[0] += 1
    fed.schedule_once()
    assert [p.cluster for p in job.placements if p.phase.is_active] == ["a"]


def test_the_only_cluster_that_refused_a_job_at_launch_is_not_sent_it_again_at_once(tmp_path: Path) -> None:
    """Found by a helper's end-to-end test: with no other cluster Ready nothing was avoided, so a cluster that
    refused at launch (its pod security level, an admission webhook, a missing namespace) was sent the job
    again by the very next cycle: dozens of generations of placements and refusals within seconds. It waits
    out the refusal's back-off there too."""
    clock = [1000.0]
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: clock[0])
    a = fed.connect(cluster="a", region="r", labels={})
    fed.report(a, _capacity(2))
    job = fed.submit(job_spec("refused", replicas=1, gpus=8, models=(H100,)))
    for step in range(3):  # refused at once each time: the waits are 30, 60, 120 s
        fed.schedule_once()
        [placement] = [p for p in job.placements if p.phase.is_active]
        assert placement.cluster == "a" and job.generation == step + 1
        fed.refused(a, placement.placement_id, "admission webhook denied the request")
        wait = FIRST_REFUSAL_SECONDS * 2 ** step
        clock[0] += wait - 1
        fed.schedule_once()
        assert job.phase is JobPhase.PENDING and job.generation == step + 1, f"placed again within {wait - 1}s"
        assert job.pending_reason is not None and "a refused this job a moment ago (admission webhook denied " \
            "the request); other clusters first, and it again after a wait" in job.pending_reason.message
        clock[0] += 1


def test_a_refusals_why_is_cut_in_the_pending_reason() -> None:
    r = RecentRefusals()
    r.note(JobId("j"), "a", now=0, why="x" * 1000)
    said = r.explain(JobId("j"), Reason(ReasonCode.RECENTLY_REFUSED, "a refused this job a moment ago; trying ..."))
    assert said.message == f"a refused this job a moment ago ({'x' * WHY_CHARS}...); trying ..."
    other = Reason(ReasonCode.GANG_DOES_NOT_FIT, "b fits 1 of 2 replicas")
    assert r.explain(JobId("j"), other) is other


def test_the_only_cluster_with_the_model_refusing_is_the_pending_reason_in_its_words(tmp_path: Path) -> None:
    """Outside QA: the member that had the job's model refused it (a namespace not marked for the queue); the
    job showed AcceleratorUnavailable from the cluster without the model, and the member's words came last,
    cut off. The refusal is what the user can act on: its code leads, and its words come first."""
    clock = [1000.0]
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: clock[0])
    a = fed.connect(cluster="a", region="r", labels={})
    fed.report(a, _capacity(2))
    other = fed.connect(cluster="b", region="r", labels={})
    fed.report(other, ClusterCapacity(cpu_milli_allocatable=10**6, cpu_milli_free=10**6, memory_bytes_allocatable=2**45,
                                      memory_bytes_free=2**45, node_cpu_milli_free_max=10**5,
                                      node_memory_bytes_free_max=2**42))  # no accelerators at all
    job = fed.submit(job_spec("needs-h100", replicas=1, gpus=8, models=(H100,)))
    fed.schedule_once()
    (p,) = job.placements
    fed.refused(a, p.placement_id, "namespace federator-workloads-monitoring is not marked for queue monitoring")
    fed.schedule_once()
    assert job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.RECENTLY_REFUSED, job.pending_reason
    assert job.pending_reason.message.startswith("0/2 clusters fit: a refused"), job.pending_reason.message


def test_a_reason_that_blamed_a_members_quota_is_said_again_once_the_quota_is_raised(tmp_path: Path) -> None:
    """Outside QA raised a Kueue ClusterQueue's quota; the gang still did not fit (one node of 8 free, two
    needed), but its reason kept telling them to raise the quota, which they had done: the job stayed parked
    under the reason it was parked with."""
    clock = [1000.0]
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: clock[0])
    a = fed.connect(cluster="a", region="r", labels={})
    one_free = pool(H100, nodes=1, free=8, extra={0: 1})  # two nodes: one busy, one with 8 free
    held = replace(_capacity(0), accelerator_pools=(replace(one_free, quota_held_accelerators=8),))
    fed.report(a, held)
    job = fed.submit(job_spec("gang", replicas=2, gpus=8, models=(H100,)))
    fed.schedule_once()
    assert job.pending_reason is not None and "quota" in job.pending_reason.message, job.pending_reason
    fed.report(a, replace(held, accelerator_pools=(one_free,)))  # the quota raised: nothing held back now
    fed.schedule_once()
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert "quota" not in job.pending_reason.message, job.pending_reason.message


def test_the_members_reason_survives_in_the_pending_reason() -> None:
    """QA's JobSet refused by JobSet's webhook: the member's reason came after the object's long name and was
    cut off at 160 characters."""
    why = ('the member cluster refused the JobSet: admission webhook "vjobset.kb.io" denied the request: '
           'spec.replicatedJobs[1].name: Invalid value: "llama3-70b-sft-lr3e5-98f706-g1-member-a-0b888f40-workers-0": '
           "JobSet name is too long, pod names generated for this JobSet will exceed 63 characters (HTTP 422 "
           "Invalid; federator-workloads-research/llama3-70b-sft-lr3e5-98f706-g1-member-a-0b888f40)")
    r = RecentRefusals()
    r.note(JobId("j"), "member-a", now=0, why=why)
    said = r.explain(JobId("j"), Reason(ReasonCode.RECENTLY_REFUSED, "member-a refused this job a moment ago; ..."))
    assert "JobSet name is too long, pod names generated for this JobSet will exceed 63 characters" in said.message
    assert '"llama3-70b-sft-lr3e5-98f..."' in said.message  # which value it was, not all of it


def test_a_placement_its_agent_fenced_is_placed_again_at_once_on_the_same_cluster(tmp_path: Path) -> None:
    """Outside QA: with --fence-after, a 37 s federator outage made every agent stop its placements; once the
    federator was back, the fenced Cancelled was taken for a refusal, and a job whose only room was there waited
    30 s more, its reason saying no region could host it. A fence (agent.proto obligation 7, worded "fenced by
    the agent of <cluster>: ...") is the agent's, not the cluster turning the job away."""

    clock = [1000.0]
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), clock=lambda: clock[0])
    a = fed.connect(cluster="a", region="r", labels={})
    fed.report(a, _capacity(2))
    job = fed.submit(job_spec("gang", replicas=2, gpus=8, models=(H100,)))
    fed.schedule_once()
    first = job.placements[0]
    fed.job_update(a, first.placement_id, JobPhase.CANCELLED, "fenced by the agent of a: 20.2s without the federator")
    assert job.phase is JobPhase.PENDING
    assert not fed.refusals.remembers(job.job_id)
    fed.report(a, _capacity(2))
    fed.schedule_once()
    assert job.phase is JobPhase.PLACED and job.placements[0].cluster == "a"


@pytest.mark.parametrize(("did", "why", "said"), [
    (FAILED_EARLY, "exit code 1: boom", "go-west saw this job fail early a moment ago (exit code 1: boom)"),
    (NOT_STARTED, "for 15s: 0 of 1 pods scheduled", "go-west held this job without starting it a moment ago "
                                                      "(for 15s: 0 of 1 pods scheduled)"),
    (REFUSED, "", "go-west refused this job a moment ago; ..."),
], ids=["failed-early", "not-started", "refused-without-words"])
def test_a_reason_says_what_the_cluster_did_not_that_it_refused(did: str, why: str, said: str) -> None:
    """Outside QA's Go agent (F5): a job that failed on a cluster, or that a cluster held past --start-timeout,
    read `go-west refused this job a moment ago`: a provider was told its cluster turned the job away."""
    r = RecentRefusals()
    r.note(JobId("j"), "go-west", 0.0, why, did=did)
    got = r.explain(JobId("j"), Reason(ReasonCode.RECENTLY_REFUSED, "go-west refused this job a moment ago; ..."))
    assert got.message.startswith(said.removesuffix("; ...")), got.message
