"""A pending reason's code is the code of what its message says first (outside QA, ML user: after its member Job
was deleted a job read `InsufficientAccelerators` with a message leading `member-b refused this job a moment ago
(... was deleted in the member cluster)`).

Each place a reason's message is put together from several rejections, or with words added to another reason's,
is checked here: `summarize` (one reason for every cluster's story), a refusal's why put in (`explain`), a
preempted job's interruption kept (`keep_interruption`), and the whole path through the live federator."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from server_support import Clock, MemoryStore, make

from federator.model import JobId, JobPhase, Reason, ReasonCode
from federator.scheduler.plugins import recently_refused
from federator.scheduler.summary import summarize
from federator.server.job_message import THEN, keep_interruption, preempted_message
from federator.server.refusals import RecentRefusals

from builders import cluster, job, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
STORIES = {
    ReasonCode.RECENTLY_REFUSED: f"{recently_refused('member-b')}; other clusters first",
    ReasonCode.INSUFFICIENT_ACCELERATORS: "member-a has no node with 8 free H100 accelerators",
    ReasonCode.GANG_DOES_NOT_FIT: "member-c fits 1 of 2 replicas x 8 H100 accelerators",
    ReasonCode.ACCELERATOR_UNAVAILABLE: "member-d has no H100 nodes",
    ReasonCode.CLUSTER_NOT_READY: "member-e is Partitioned",
    ReasonCode.QUOTA_EXCEEDED: "queue default is at its quota of 16 H100",
}


def _first_clause(reason: Reason, clusters: int) -> str:
    prefix = f"0/{clusters} clusters fit: "
    assert reason.message.startswith(prefix), reason.message
    return reason.message[len(prefix):].split("; ")[0]


@pytest.mark.parametrize("codes", [c for n in (1, 2, 3) for c in itertools.combinations(STORIES, n)],
                         ids=lambda codes: "+".join(codes))
def test_summarize_leads_with_the_story_of_the_code_it_chose(codes: tuple[ReasonCode, ...]) -> None:
    rejected = [Reason(code, STORIES[code]) for code in reversed(codes)]
    got = summarize(rejected, len(rejected), request(job("g", gpus=8, replicas=2)))
    assert _first_clause(got, len(rejected)) == STORIES[got.code].split("; ")[0], got
    assert all(STORIES[c] in got.message for c in codes)  # every cluster's story is still told


def test_a_refusals_words_come_right_after_the_codes_own() -> None:
    """Not cut off behind the lesser reasons (the reason a refusal first led the message)."""
    codes = [ReasonCode.CLUSTER_NOT_READY, ReasonCode.RECENTLY_REFUSED, ReasonCode.ACCELERATOR_UNAVAILABLE,
             ReasonCode.INSUFFICIENT_ACCELERATORS]
    got = summarize([Reason(c, STORIES[c]) for c in codes], 4, request(job("g", gpus=8)))
    assert got.code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert got.message.split(": ", 1)[1].split("; ")[:2] == [STORIES[ReasonCode.INSUFFICIENT_ACCELERATORS],
                                                             recently_refused("member-b")]


def test_words_added_to_a_reason_keep_its_lead_and_so_its_code() -> None:
    r = RecentRefusals()
    r.note(JobId("j"), "member-b", now=0, why="pod p on node n was deleted in the member cluster")
    for code in STORIES:
        first = Reason(code, f"0/2 clusters fit: {STORIES[code]}; {STORIES[ReasonCode.RECENTLY_REFUSED]}")
        told = r.explain(JobId("j"), first)
        assert told.code is code and _first_clause(told, 2).startswith(STORIES[code].split("; ")[0][:20])
        kept = keep_interruption(Reason(ReasonCode.PREEMPTED, preempted_message("preempted on c for x", 5.0)), told)
        assert kept.code is ReasonCode.PREEMPTED and kept.message.startswith("preempted on c for x, at ")
        assert kept.message.endswith(f"{THEN}{told.code}: {told.message}")


def test_a_job_refused_by_one_member_and_short_of_room_on_another_says_the_room_first() -> None:
    """The live path: member-b refuses the job (its pods deleted there), member-a has no node with room. The job
    waits for accelerators (it may preempt for them), and its message leads with that, then member-b's words."""
    fed = make(MemoryStore(), Clock())
    b = fed.connect(cluster="member-b", region="r", labels={})
    fed.report(b, cluster("member-b", "r", pool(H100, nodes=2)).capacity)
    spec = job("refused", gpus=8, models=("H100",))
    placed = fed.submit(spec)
    fed.schedule_once()
    (p,) = placed.placements
    a = fed.connect(cluster="member-a", region="r", labels={})
    fed.report(a, cluster("member-a", "r", pool(H100, nodes=0, extra=Counter({4: 2}))).capacity)
    fed.job_update(b, p.placement_id, JobPhase.CANCELLED, "pod p on node n was deleted in the member cluster")
    assert placed.phase is JobPhase.PENDING
    fed.schedule_once()
    reason = placed.pending_reason
    assert reason is not None and reason.code is ReasonCode.INSUFFICIENT_ACCELERATORS, reason
    first = _first_clause(reason, 2)
    assert first.startswith("member-a has no node with 8 free"), reason.message
    assert "member-b refused this job a moment ago (pod p on node n was deleted in the member cluster)" \
        in reason.message
