"""Scaling a serving job down in place (server/shrink.py): a part on an agent that can resize keeps its id.

A job of one part of 6 replicas on A, scaled to 4: when A's agent said "resize" in its Hello, the placement keeps
its id and generation, its stored count is 4 before any agent hears of it, and A gets a Resize, never a Cancel;
nothing new is placed. When A's agent did not say so (an older or third-party agent), the part is replaced as
before. A restart after the store write converges at the agent's re-sync, which re-sends the Resize. An agent
that answers Ack ok=false resize=true has its part replaced, and the job is not kept off its cluster.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from server_support import Clock, MemoryStore, capacity, join, make
from test_partial_failover import drain, running_on
from test_scaling import part

from federator.jobfile import parse_job
from federator.model import AgentFeature, ClusterState, Job, JobId, JobKind, JobPhase, JobSpec, ReasonCode
from federator.server import shrink
from federator.server.federator import ClusterRecord, Federator
from federator.server.nearness import Nearness
from federator.server.orders import CancelOrder, LaunchOrder, ResizeOrder
from federator.server.shrink import plan_down
from federator.store.sqlite import SqliteJobStore

RESIZE = frozenset({AgentFeature.RESIZE})


def serving(name: str = "chat", *, replicas: int = 6, min_regions: int = 1) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "inference", "replicas": replicas, "regions": {"minRegions": min_regions},
                               "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}})


def parts_counted(fed: Federator) -> dict[str, float]:
    """federator_scale_down_parts_total by result, the ones counted."""
    return {s.labels["result"]: s.value for m in fed.metrics.registry.collect()
            if m.name == "federator_scale_down_parts" for s in m.samples if s.name.endswith("_total") and s.value}


@pytest.fixture
def clock() -> Clock:
    return Clock()


def one_part(fed: Federator, *, resizes: bool) -> tuple[Job, ClusterRecord]:
    a = join(fed, "a", region="east")
    a.features = RESIZE if resizes else frozenset()
    job = fed.submit(serving())
    fed.schedule_once()
    assert [(p.cluster, p.replicas) for p in job.placements] == [("a", 6)]
    running_on(fed, job, a)
    return job, a


def test_a_part_on_an_agent_that_resizes_shrinks_in_place(clock: Clock) -> None:
    store = MemoryStore()
    fed = make(store, clock)
    job, a = one_part(fed, resizes=True)
    (before,) = job.placements
    pid, generation = before.placement_id, before.generation

    fed.scale(job.job_id, 4)
    (now,) = job.placements
    assert (now.placement_id, now.generation, now.replicas, now.phase) == (pid, generation, 4, JobPhase.RUNNING)
    assert [p.replicas for p in store.docs[job.job_id].placements] == [4]  # stored, with the new spec
    assert store.docs[job.job_id].placements[0].placement_id == pid
    assert drain(a) == [ResizeOrder(pid, generation, 4, "scaled from 6 to 4: a shrank 6 → 4 in place")]
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 0 and job.pending_reason is None
    assert job.message.startswith("scaled from 6 to 4: a shrank 6 → 4 in place")
    fed.schedule_once()
    assert [p.placement_id for p in job.placements] == [pid] and drain(a) == []  # nothing owed, nothing placed
    assert parts_counted(fed) == {"shrunk": 1.0}


def test_the_federator_books_the_smaller_count_at_once(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a = one_part(fed, resizes=True)
    fed.report(a, capacity(free=8))  # the part is not yet counted by the report: the federator reserves it
    free = fed.cycles.snapshot().clusters[0].capacity.free_accelerators
    fed.scale(job.job_id, 4)
    assert fed.cycles.snapshot().clusters[0].capacity.free_accelerators == free + 2


def test_an_agent_without_the_feature_still_gets_the_part_replaced(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a = one_part(fed, resizes=False)
    (before,) = job.placements

    fed.scale(job.job_id, 4)
    orders = drain(a)
    assert [type(o) for o in orders] == [CancelOrder] and orders[0].placement_id == before.placement_id
    assert not any(isinstance(o, ResizeOrder) for o in orders)
    fed.schedule_once()
    (after,) = job.placements
    assert after.placement_id != before.placement_id and after.replicas == 4
    assert [type(o) for o in drain(a)] == [LaunchOrder]
    assert parts_counted(fed) == {"stopped": 1.0}


def test_parts_shrink_where_they_can_and_others_stay_whole(clock: Clock) -> None:
    """A (resizes) and B (does not) hold 3 each; scaled to 4, B's part is kept whole and A's shrinks to 1, rather
    than A kept whole and B replaced by a new part of 1: every replica that stays keeps serving."""
    fed = make(MemoryStore(), clock)
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    a.features = RESIZE
    fed.report(a, capacity(free=3))
    fed.report(b, capacity(free=3))
    job = fed.submit(serving(replicas=6))
    fed.schedule_once()
    running_on(fed, job, a, b)
    ids = {p.cluster: p.placement_id for p in job.placements}
    assert {p.cluster: p.replicas for p in job.placements} == {"a": 3, "b": 3}

    fed.scale(job.job_id, 4)
    assert {p.cluster: (p.placement_id, p.replicas) for p in job.placements} == {"a": (ids["a"], 1),
                                                                                 "b": (ids["b"], 3)}
    assert [type(o) for o in drain(a)] == [ResizeOrder] and drain(b) == []
    assert job.replicas_waiting == 0


def test_a_restart_after_the_write_converges_at_the_resync(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "jobs.db"
    store = SqliteJobStore(db)
    fed = make(store, clock)  # type: ignore[arg-type]
    job, a = one_part(fed, resizes=True)
    (placed,) = job.placements
    fed.scale(job.job_id, 4)  # stored; the process dies before the Resize reaches the agent
    fed.cycles.close()
    store.close()

    store = SqliteJobStore(db)
    again = make(store, clock)  # type: ignore[arg-type]
    job = again.get(job.job_id)
    assert [(p.placement_id, p.replicas) for p in job.placements] == [(placed.placement_id, 4)]
    rec = again.connect(cluster="a", region="east", labels={})
    rec.features = RESIZE
    again.job_update(rec, placed.placement_id, JobPhase.RUNNING, "6 replicas running")  # still 6 there
    again.report(rec, capacity(placed.placement_id))
    assert drain(rec) == [ResizeOrder(placed.placement_id, placed.generation, 4, "re-sync: the placement's count")]
    again.schedule_once()
    assert [(p.placement_id, p.replicas) for p in job.placements] == [(placed.placement_id, 4)]
    assert drain(rec) == []  # nothing cancelled, nothing placed
    again.cycles.close()
    store.close()


def test_an_agent_that_cannot_shrink_the_part_has_it_replaced_without_a_cooldown(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a = one_part(fed, resizes=True)
    (placed,) = job.placements
    fed.scale(job.job_id, 4)
    drain(a)

    shrink.refused(fed, a, placed.placement_id, "LeaderWorkerSet w/x cannot shrink in place")
    assert [o.placement_id for o in drain(a) if isinstance(o, CancelOrder)] == [placed.placement_id]
    assert job.pending_reason is not None and "could not shrink" in job.pending_reason.message
    fed.schedule_once()
    (again,) = job.placements
    assert again.cluster == "a" and again.replicas == 4  # placed again, on the same cluster: no refusal cooldown
    assert job.pending_reason is None or job.pending_reason.code is not ReasonCode.RECENTLY_REFUSED
    assert parts_counted(fed) == {"shrunk": 1.0, "refused": 1.0}


@pytest.mark.parametrize(("parts", "replicas", "min_regions", "elastic", "dropped", "shrunk"), [
    ([part("a", "east", 6)], 4, 1, "a", [], {"a": 4}),
    ([part("a", "east", 6)], 4, 1, "", ["a"], {}),
    ([part("a", "east", 3), part("b", "west", 3)], 4, 1, "ab", [], {"b": 1}),
    ([part("a", "east", 3), part("b", "west", 3)], 4, 1, "a", [], {"a": 1}),
    ([part("a", "east", 3, running=False), part("b", "west", 3)], 4, 1, "ab", [], {"a": 1}),
    ([part("a", "east", 3), part("b", "east", 3), part("c", "west", 1)], 2, 2, "abc", ["b"], {"a": 1}),
    ([part("a", "east", 4), part("b", "east", 4)], 2, 2, "ab", ["b"], {"a": 1}),
], ids=["one-part", "not-elastic", "fewest-touched", "the-elastic-one-shrinks", "running-keeps-its-replicas",
        "min-regions", "min-regions-owed"])
def test_which_parts_shrink(parts: list, replicas: int, min_regions: int, elastic: str, dropped: list[str],
                            shrunk: dict[str, int]) -> None:
    ids = {p.cluster: p.placement_id for p in parts}
    plan = plan_down(parts, replicas, min_regions, {ids[c] for c in elastic})
    assert [p.cluster for p in plan.dropped] == dropped
    assert plan.shrunk == {ids[c]: n for c, n in shrunk.items()}


WEST = Nearness(preferred=frozenset({"west"}))


@pytest.mark.parametrize(("parts", "replicas", "min_regions", "elastic", "dropped", "shrunk"), [
    ([part("w", "west", 16), part("c", "central", 1), part("e", "east", 1)], 2, 1, "wce", ["c", "e"], {"w": 2}),
    ([part("w", "west", 16), part("c", "central", 1), part("e", "east", 1)], 16, 1, "wce", ["c", "e"], {}),
    ([part("w", "west", 16), part("c", "central", 1), part("e", "east", 1)], 2, 2, "wce", ["e"], {"w": 1}),
    ([part("w", "west", 3), part("c", "central", 3)], 4, 1, "wc", [], {"c": 1}),
    ([part("w", "west", 3, running=False), part("c", "central", 3)], 4, 1, "wc", [], {"w": 1}),
], ids=["far-ones-stop", "far-ones-stop-before-the-near-one-shrinks", "min-regions", "the-far-one-shrinks",
        "running-before-preferred"])
def test_the_parts_near_the_users_keep_their_replicas(parts: list, replicas: int, min_regions: int, elastic: str,
                                                      dropped: list[str], shrunk: dict[str, int]) -> None:
    """Outside QA F10: `spill` (preferred west, west x16 + central x1 + east x1) scaled to 2 stopped all of west."""
    ids = {p.cluster: p.placement_id for p in parts}
    plan = plan_down(parts, replicas, min_regions, {ids[c] for c in elastic}, WEST)
    assert [p.cluster for p in plan.dropped] == dropped
    assert plan.shrunk == {ids[c]: n for c, n in shrunk.items()}


def test_a_job_scaled_down_keeps_its_replicas_in_its_preferred_region(clock: Clock) -> None:
    """End to end (outside QA F10, repro 07): placed west x16 (west is full) + central x1 + east x1, then scaled
    to 2: west shrinks in place and the far ones stop; before, all of west stopped and the far two served."""
    fed = make(MemoryStore(), clock)
    recs = [join(fed, name, region=region) for name, region in
            (("west-1", "west"), ("central-1", "central"), ("east-1", "east"))]
    fed.report(recs[0], capacity(free=4))  # 16 accelerators free in west
    for rec in recs:
        rec.features = RESIZE
    spill = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "spill"},
                       "spec": {"kind": "inference", "replicas": 18, "regions": {"preferred": ["west"]},
                                "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}})
    job = fed.submit(spill)
    fed.schedule_once()
    assert sorted((p.cluster, p.replicas) for p in job.placements) == [("central-1", 1), ("east-1", 1),
                                                                       ("west-1", 16)]
    running_on(fed, job, *recs)

    fed.scale(job.job_id, 2)
    assert [(p.cluster, p.replicas) for p in job.placements] == [("west-1", 2)]
    assert job.message.startswith("scaled from 18 to 2: west-1 shrank 16 → 2 in place, central-1 stopped")
    assert [type(o) for o in drain(recs[0])] == [ResizeOrder]


def chat_east_and_west(fed: Federator, **annotations: str) -> tuple[Job, ClusterRecord, ClusterRecord]:
    """`chat` (preferred west, minRegions 2) running east x1 + west x3 on agents that resize (outside QA F11)."""
    east, west = join(fed, "member-a", region="east"), join(fed, "member-b", region="west")
    east.features = west.features = RESIZE
    job = fed.submit(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": "chat", "annotations": annotations},
        "spec": {"kind": "inference", "replicas": 4, "regions": {"preferred": ["west"], "minRegions": 2},
                 "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}}))
    fed.schedule_once()
    assert sorted((p.cluster, p.replicas) for p in job.placements) == [("member-a", 1), ("member-b", 3)]
    running_on(fed, job, east, west)
    return job, east, west


def back(fed: Federator, name: str, region: str, *, resizes: bool, holding: dict[str, int]) -> ClusterRecord:
    """The agent of `name` reconnects (a new Hello) and re-syncs, reporting the placements it holds."""
    rec = fed.connect(cluster=name, region=region, labels={})
    rec.features = RESIZE if resizes else frozenset()
    for pid, n in holding.items():
        fed.job_update(rec, pid, JobPhase.RUNNING, f"{n} of {n} replicas running")
    fed.report(rec, capacity(*holding))
    return rec


def test_a_part_on_an_agent_between_streams_shrinks_at_its_resync(clock: Clock) -> None:
    """Outside QA F11 (repro 08): member-b's agent restarts, and the job is scaled 4 -> 2 meanwhile. Its part of 3
    in the preferred region was stopped whole and a new replica placed in a third region (the job served 1
    replica). Now the part keeps its id, is stored at 1, nothing is cancelled or placed, and the Resize goes out
    at the re-sync."""
    fed = make(MemoryStore(), clock)
    job, east, west = chat_east_and_west(fed)
    central = join(fed, "central-1", region="central")
    (far,) = [p for p in job.placements if p.cluster == "member-b"]
    fed.disconnect(west)
    clock.now += 1

    ids = sorted(p.placement_id for p in job.placements)
    fed.scale(job.job_id, 2)
    assert sorted(p.placement_id for p in job.placements) == ids  # both parts kept, none replaced
    assert sorted((p.cluster, p.replicas) for p in job.placements) == [("member-a", 1), ("member-b", 1)]
    assert job.message.startswith("scaled from 4 to 2: member-b shrinks 3 → 1 in place when its agent is back")
    fed.schedule_once()
    assert job.replicas_waiting == 0 and drain(east) == [] and drain(central) == []  # nothing placed elsewhere

    clock.now += 4
    west = back(fed, "member-b", "west", resizes=True, holding={far.placement_id: 3})
    assert drain(west) == [ResizeOrder(far.placement_id, far.generation, 1, "re-sync: the placement's count")]
    assert sorted((p.cluster, p.replicas) for p in job.placements) == [("member-a", 1), ("member-b", 1)]
    assert parts_counted(fed) == {"shrunk": 1.0}


def test_an_agent_back_without_the_feature_has_the_part_shrunk_while_away_replaced(clock: Clock) -> None:
    """The Hello after the disconnect replaces the features: an agent downgraded meanwhile runs the part at its
    old count, so the part is replaced at its re-sync, as one whose Resize was refused."""
    fed = make(MemoryStore(), clock)
    job, east, west = chat_east_and_west(fed)
    (far,) = [p for p in job.placements if p.cluster == "member-b"]
    fed.disconnect(west)
    fed.scale(job.job_id, 2)

    west = back(fed, "member-b", "west", resizes=False, holding={far.placement_id: 3})
    assert [o.placement_id for o in drain(west) if isinstance(o, CancelOrder)] == [far.placement_id]
    assert job.pending_reason is not None and "came back without the resize feature" in job.pending_reason.message
    fed.schedule_once()
    assert sum(p.replicas for p in job.placements if p.phase.is_active) == 2 and job.replicas_waiting == 0
    assert far.placement_id not in {p.placement_id for p in job.placements}


def test_a_resize_dropped_for_an_agent_away_is_owed_whoever_sent_it(clock: Clock) -> None:
    """The owed Resizes are kept where every dropped order passes (Orphans.unsent), as the owed cancels are, not
    by the scale-down that sent them: a Resize any code sends through `Federator.send` while the agent is away is
    settled at its re-sync."""
    fed = make(MemoryStore(), clock)
    job, east, west = chat_east_and_west(fed)
    (far,) = [p for p in job.placements if p.cluster == "member-b"]
    fed.disconnect(west)
    fed.send("member-b", ResizeOrder(far.placement_id, far.generation, 2, "rebalance"))
    fed.send("member-a", ResizeOrder("not-away", 1, 1, "connected: sent, not owed"))
    assert west.resizes_owed == {far.placement_id}
    assert east.resizes_owed == set()

    west = back(fed, "member-b", "west", resizes=False, holding={far.placement_id: 3})
    assert [o.placement_id for o in drain(west) if isinstance(o, CancelOrder)] == [far.placement_id]


def test_a_part_on_a_lost_cluster_is_stopped_whole_as_before(clock: Clock) -> None:
    """A Lost cluster's part is gone anyway: not shrunk, dropped, and its replicas owed are placed elsewhere."""
    fed = make(MemoryStore(), clock)
    job, east, west = chat_east_and_west(fed, **{"federator.io/failover": "keep"})
    join(fed, "central-1", region="central")
    (far,) = [p for p in job.placements if p.cluster == "member-b"]
    fed.disconnect(west)
    clock.now += 100
    fed.check_leases()
    assert fed.clusters["member-b"].state is ClusterState.LOST
    assert far.placement_id in {p.placement_id for p in job.placements}  # kept: failover "keep"

    fed.scale(job.job_id, 2)
    assert far.placement_id not in {p.placement_id for p in job.placements}
    assert "member-b stopped (3 replicas)" in job.message


THREE_TO_ONE = (("east", 3), ("west", 1))


@pytest.mark.parametrize(("parts", "replicas", "elastic", "dropped", "shrunk"), [
    ([part("e", "east", 6), part("w", "west", 2)], 4, ("e", "w"), [], {"e": 3, "w": 1}),
    ([part("e", "east", 6), part("w", "west", 2)], 2, ("e", "w"), ["w"], {"e": 2}),
    ([part("e1", "east", 4), part("e2", "east", 2), part("w", "west", 2)], 4, ("e1", "e2", "w"), ["e2"],
     {"e1": 3, "w": 1}),
    ([part("e", "east", 6), part("w", "west", 1)], 4, ("e", "w"), [], {"e": 3}),
    ([part("e", "east", 6)], 4, ("e",), [], {"e": 3}),
    ([part("e", "east", 6)], 6, ("e",), [], {"e": 5}),
    ([part("e", "east", 6), part("w", "west", 2)], 4, (), ["e", "w"], {}),
    ([part("e", "east", 3), part("w1", "west", 1), part("w2", "west", 1, generation=2)], 4, (), ["w2"], {}),
], ids=["8-to-4-keeps-3-and-1", "8-to-2-keeps-2-and-0", "within-a-region-the-usual-choice",
        "a-region-short-keeps-what-it-has", "a-region-lost-is-owed-its-share-there",
        "a-region-over-its-share-with-no-fewer-replicas-in-all", "parts-that-cannot-shrink-are-replaced",
        "whole-parts-within-the-share-stay"])
def test_a_weighted_job_keeps_each_regions_share(parts: list, replicas: int, elastic: tuple[str, ...],
                                                 dropped: list[str], shrunk: dict[str, int]) -> None:
    """spec.regions.weights 3:1: what stays is each region's share of the new count (scheduler/weights.py
    `shares`), never more; a region holding less keeps what it has. Without the weights the plan keeps the most
    regions and touches the fewest parts: 1 and 1 of 8 -> 2; 2 and 2 of 4 + 2 + 2 -> 4."""
    ids = {p.cluster: p.placement_id for p in parts}
    plan = plan_down(parts, replicas, 1, {ids[c] for c in elastic}, weights=THREE_TO_ONE)
    assert [p.cluster for p in plan.dropped] == dropped
    assert plan.shrunk == {ids[c]: n for c, n in shrunk.items()}


def test_many_parts_are_shrunk_greedily() -> None:
    parts = [part(f"c{i}", f"r{i % 4}", 1 + i % 3) for i in range(shrink.EXACT_PARTS + 4)]
    elastic = {p.placement_id for p in parts}
    for replicas, min_regions in ((10, 4), (5, 4), (4, 4)):
        plan = plan_down(parts, replicas, min_regions, elastic)
        kept = [replace(p, replicas=plan.shrunk.get(p.placement_id, p.replicas)) for p in parts
                if p not in plan.dropped]
        assert sum(p.replicas for p in kept) == replicas  # all elastic: nothing is owed
        assert len({p.region for p in kept}) >= min_regions


def test_the_resync_resends_resizes_only_for_scalable_serving_placements_to_an_agent_that_resizes() -> None:
    def running(spec: JobSpec, name: str) -> Job:
        p = replace(part("a", "east", 4), placement_id=f"{name}.g1.a", job_id=name)
        return Job(JobId(name), spec, submitted_at=0.0, phase=JobPhase.RUNNING, placements=[p], generation=1)

    serve = running(serving(), "chat")
    lws = running(replace(serving(), workload_json='{"kind": "LeaderWorkerSet"}'), "lws")
    train = running(replace(serving(), kind=JobKind.TRAINING), "train")
    rec = ClusterRecord("a", "east", {})
    present = {"chat.g1.a", "lws.g1.a", "train.g1.a"}
    assert shrink.resync_orders([serve, lws, train], rec, present) == []  # no feature: nothing
    rec.features = RESIZE
    assert shrink.resync_orders([serve, lws, train], rec, present) == [
        ResizeOrder("chat.g1.a", 1, 4, "re-sync: the placement's count")]
    assert shrink.resync_orders([serve], rec, set()) == []  # not held there: its Launch is re-sent instead
