"""The federator's state machine under faults: leases, Lost clusters, fencing, re-sync, backpressure.

No sockets here: a fake clock, an in-memory store, and the same calls the gRPC
transports make. The same behaviours are checked with real processes in
tests/reliability.
"""

from __future__ import annotations

import pytest
from server_support import LEASE, LOST_AFTER, Clock, MemoryStore, capacity, join, make, spec

from federator.model import ClusterState, Job, JobPhase, ReasonCode
from federator.security.limits import Limits
from federator.server.federator import FAILOVER_ANNOTATION, OUTBOX_LIMIT, ClusterRecord, Federator
from federator.server.intake import AlreadyExists, SubmitError
from federator.server.orders import CancelOrder, LaunchOrder, Order
from federator.server.outbox import EndCode, Outbox


def drain(rec: ClusterRecord) -> list[Order | None]:
    out: list[Order | None] = []
    while not rec.outbox.empty():
        out.append(rec.outbox.get_nowait())
    return out


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def running(fed: Federator, name: str) -> tuple[Job, ClusterRecord]:
    """Submit, place and start one job; returns it with the record of its cluster."""
    job = fed.submit(spec(name))
    fed.schedule_once()
    (p,) = job.placements
    rec = fed.clusters[p.cluster]
    assert any(isinstance(o, LaunchOrder) and o.placement.placement_id == p.placement_id for o in drain(rec))
    fed.acked(rec, p.placement_id)
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "running")
    assert job.phase is JobPhase.RUNNING
    return job, rec


def other(fed: Federator, name: str) -> ClusterRecord:
    return next(r for n, r in fed.clusters.items() if n != name)


def test_a_lost_cluster_jobs_are_re_placed_with_a_new_generation_and_the_old_copy_fenced(
        store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    join(fed, "east-1")
    join(fed, "west-1")
    job, home = running(fed, "train")
    old = job.placements[0]
    away = other(fed, home.name)

    fed.disconnect(home)
    assert home.state is ClusterState.PARTITIONED
    clock.now += LOST_AFTER - 1
    fed.report(away, capacity())  # the other cluster stays Ready
    fed.check_leases()
    assert home.state is ClusterState.PARTITIONED and job.phase is JobPhase.RUNNING  # jobs keep running

    clock.now += 2
    fed.check_leases()
    assert home.state is ClusterState.LOST
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.CLUSTER_NOT_READY and home.name in job.pending_reason.message
    assert fed.metrics.registry.get_sample_value("federator_placement_retries_total",
                                                 {"reason": "ClusterNotReady"}) == 1.0
    fed.schedule_once()
    (new,) = job.placements
    assert new.cluster == away.name and new.generation == old.generation + 1
    assert store.docs[job.job_id].placements[0].placement_id == new.placement_id  # on disk before the order
    assert [o.placement.generation for o in drain(away) if isinstance(o, LaunchOrder)] == [new.generation]

    # The partition heals: the old cluster re-syncs and is told to stop the superseded copy.
    back = fed.connect(cluster=home.name, region="r", labels={})
    fed.job_update(back, old.placement_id, JobPhase.RUNNING, "resync")
    fed.report(back, capacity(old.placement_id))
    assert back.state is ClusterState.READY
    orders = drain(back)
    assert orders and all(isinstance(o, CancelOrder) and o.placement_id == old.placement_id for o in orders)
    assert job.placements == [new]


def test_failover_keep_leaves_the_job_waiting_for_its_cluster(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    join(fed, "east-1")
    join(fed, "west-1")
    job = fed.submit(spec("stay", **{FAILOVER_ANNOTATION: "keep"}))
    fed.schedule_once()
    home = fed.clusters[job.placements[0].cluster]
    fed.disconnect(home)
    clock.now += LOST_AFTER + 1
    fed.check_leases()
    assert home.state is ClusterState.LOST
    assert job.phase is JobPhase.PLACED and job.placements[0].cluster == home.name


@pytest.mark.parametrize("policy", ["sometimes", ""], ids=["unknown-word", "empty"])
def test_a_bad_failover_policy_is_refused_naming_the_annotation(store: MemoryStore, clock: Clock,
                                                                      policy: str) -> None:
    fed = make(store, clock)
    with pytest.raises(SubmitError, match=f"metadata.annotations\\[{FAILOVER_ANNOTATION}\\]"):
        fed.submit(spec("bad", **{FAILOVER_ANNOTATION: policy}))


def test_a_launch_order_lost_in_flight_is_sent_again_with_the_same_placement(
        store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    join(fed, "west-1")
    job = fed.submit(spec("lost-order"))
    fed.schedule_once()
    rec = fed.clusters["west-1"]
    drain(rec)  # the stream breaks before the agent reads the order
    fed.disconnect(rec)
    back = join(fed, "west-1")  # reconnects: holds nothing
    (order,) = drain(back)
    assert isinstance(order, LaunchOrder) and order.placement.placement_id == job.placements[0].placement_id
    assert order.placement.generation == job.generation  # the same placement, not a new one


def test_a_placement_the_restarted_agent_no_longer_holds_is_re_queued(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    join(fed, "west-1")
    job, rec = running(fed, "forgotten")
    gen = job.generation
    fed.disconnect(rec)
    join(fed, "west-1")  # the agent restarted: it reports nothing of the placement
    assert job.phase is JobPhase.PENDING
    assert job.pending_reason is not None and "no longer runs" in job.pending_reason.message
    fed.schedule_once()
    assert job.phase is JobPhase.PLACED and job.generation == gen + 1


def test_a_placement_that_finished_during_the_partition_completes_once(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    join(fed, "west-1")
    job, rec = running(fed, "done-away")
    pid = job.placements[0].placement_id
    fed.disconnect(rec)
    back = fed.connect(cluster="west-1", region="r", labels={})
    fed.job_update(back, pid, JobPhase.SUCCEEDED, "resync")  # the re-sync comes before the first report
    fed.report(back, capacity())
    assert job.phase is JobPhase.SUCCEEDED and job.generation == 1
    assert drain(back) == []


def test_a_refusal_re_synced_after_a_reconnect_re_places_the_job_elsewhere(store: MemoryStore, clock: Clock) -> None:
    """The agent refused a gang while its stream was down, and deleted it: the re-sync carries the refusal."""
    fed = make(store, clock)
    join(fed, "east-1")
    join(fed, "west-1")
    job, home = running(fed, "gang")
    pid = job.placements[0].placement_id
    fed.disconnect(home)
    back = fed.connect(cluster=home.name, region="r", labels={})
    fed.job_update(back, pid, JobPhase.CANCELLED, "refused: gang timeout on " + home.name)
    fed.report(back, capacity())  # it no longer holds the placement
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.REFUSED_BY_CLUSTER and "gang timeout" in job.pending_reason.message
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == [other(fed, home.name).name]
    drain(back)
    fed.disconnect(back)  # the next re-sync repeats the refusal: the federator already had it
    again = fed.connect(cluster=home.name, region="r", labels={})
    fed.job_update(again, pid, JobPhase.CANCELLED, "refused: gang timeout on " + home.name)
    fed.report(again, capacity())
    assert drain(again) == [] and job.phase is JobPhase.PLACED and job.placements[0].cluster != home.name


def test_a_report_listing_a_placement_that_is_not_current_gets_it_cancelled(
        store: MemoryStore, clock: Clock) -> None:
    """Of a job the store never knew, with no --orphan-grace (the Federator's default): at once, named an orphan
    (server/orphans.py; superseded placements of known jobs: tests/server/test_orphans.py)."""
    fed = make(store, clock)
    rec = join(fed, "west-1")
    fed.report(rec, capacity("ghost.g1.west-1"))
    assert [o for o in drain(rec) if isinstance(o, CancelOrder)] == [
        CancelOrder("ghost.g1.west-1", "orphan: the federator's store has no record of its job (--orphan-grace 0s)")]


def test_a_silent_agent_is_partitioned_then_ready_again_when_it_reports(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    rec = join(fed, "west-1")
    clock.now += LEASE + 0.5
    fed.check_leases()
    assert rec.state is ClusterState.PARTITIONED
    fed.report(rec, capacity())
    assert rec.state is ClusterState.READY


def test_an_agent_that_reads_nothing_has_its_stream_ended_and_never_blocks_the_others(
        store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    slow = join(fed, "east-1")
    fast = join(fed, "west-1")
    slow.outbox = Outbox(limit=50)  # OUTBOX_LIMIT is a million: more than any member's placements can make
    for i in range(50 + 5):
        fed.send("east-1", CancelOrder(f"p{i}", "x"))  # never awaits, never raises
    fed.send("west-1", CancelOrder("q", "x"))
    assert slow.closing and drain(slow) == [None]  # the stream ends; the agent reconnects and re-syncs
    assert slow.outbox.ending is not None and slow.outbox.ending.code is EndCode.RESOURCE_EXHAUSTED
    assert "east-1: 50 orders wait unread" in slow.outbox.ending.message
    assert drain(fast) == [CancelOrder("q", "x")]


def test_after_a_restart_clusters_with_placements_are_expected_back_and_lost_if_they_do_not_return(
        store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    join(fed, "east-1")
    join(fed, "west-1")
    job, home = running(fed, "survivor")
    restarted = make(store, clock)  # same store: as after SIGKILL
    job2 = restarted.jobs[job.job_id]
    assert job2.phase is JobPhase.RUNNING and job2.placements[0].placement_id == job.placements[0].placement_id
    assert restarted.clusters[home.name].state is ClusterState.PARTITIONED
    join(restarted, other(fed, home.name).name)
    clock.now += LOST_AFTER + 1
    restarted.check_leases()
    assert restarted.clusters[home.name].state is ClusterState.LOST and job2.phase is JobPhase.PENDING


@pytest.mark.parametrize(("kw", "field"), [
    ({"replicas": 20, "gpus": 8}, "spec.replicas"),
    ({"replicas": 5, "gpus": 8}, "spec.resources.nvidia.com/gpu"),
], ids=["too-many-replicas", "too-many-gpus"])
def test_jobs_over_the_limits_are_refused_naming_the_field(store: MemoryStore, clock: Clock,
                                                                 kw: dict[str, int], field: str) -> None:
    fed = make(store, clock, limits=Limits(max_replicas_per_job=10, max_accelerators_per_job=32))
    with pytest.raises(SubmitError, match=field.replace(".", "\\.")):
        fed.submit(spec("big", **kw))  # type: ignore[arg-type]
    assert store.docs == {}
    assert fed.metrics.registry.get_sample_value("federator_messages_rejected_total",
                                                 {"reason": "limit_exceeded"}) == 1.0


def test_a_duplicate_submission_is_already_exists(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    fed.submit(spec("once"))
    with pytest.raises(AlreadyExists, match="metadata.name"):
        fed.submit(spec("once"))
    assert len(store.docs) == 1


def test_the_outbox_is_bounded() -> None:
    assert ClusterRecord(name="c", region="r", labels={}).outbox.limit == OUTBOX_LIMIT


def test_a_placement_the_cluster_stops_on_its_own_is_re_queued(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    join(fed, "west-1")
    job, rec = running(fed, "evicted")
    kueue = ("refused: waiting for Kueue admission on west-1: couldn't assign flavors to pod set workers: insufficient "
             "quota for nvidia.com/gpu in flavor gpus, previously considered podsets requests (0) + current podset "
             "request (16) > maximum capacity (8); held 600s (--kueue-admission-timeout 600s)")
    fed.job_update(rec, job.placements[0].placement_id, JobPhase.CANCELLED, kueue)
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert "stopped placement" in job.pending_reason.message
    assert job.pending_reason.message.endswith(kueue)  # whole: the cause is named at its end


def test_a_watcher_that_falls_behind_is_dropped_and_knows_it(store: MemoryStore, clock: Clock) -> None:
    fed = make(store, clock)
    fed.history.size = 3  # the history the federator holds: a watcher further behind has lost changes
    slow = fast = fed.history.revision
    for i in range(5):
        fed.submit(spec(f"w{i}"))
        fast = fed.history.after(fast)[-1].revision
    assert not fed.history.held(slow)  # JobService.Watch ends its stream: RESOURCE_EXHAUSTED, watch again
    assert fed.history.held(fast)
