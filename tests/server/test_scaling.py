"""Scaling an inference job (server/scaling.py): its running parts keep serving, and only the difference moves.

An inference job of 4 replicas runs 2 on A (east) and 2 on B (west). Scaled up, A's and B's placements keep their
ids and get no order, and the cycle places the rest only. Scaled down, whole parts are superseded until the live
ones hold no more than the new count, and what is owed is placed as the rest. The new spec is stored before any
cancel order goes out; a restart in between converges. Refusals name the field.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from server_support import Clock, MemoryStore, capacity, join, make, spec
from test_partial_failover import drain, inference, running_on, spread_over_a_and_b

from federator.jobfile import parse_job
from federator.model import Job, JobId, JobPhase, Placement, PlacementId, ReasonCode
from federator.scheduler import Scheduler
from federator.scheduler.policy import policy_from_document
from federator.security.limits import Limits
from federator.server.intake import RequestIdConflict
from federator.server.nearness import ANYWHERE, Nearness
from federator.server.orders import CancelOrder, LaunchOrder
from federator.server.scaling import EXACT_PARTS, ScaleProblem, ScaleRefused, parts_to_drop
from federator.server.scheduling import compute
from federator.store import StoreUnavailable
from federator.store.sqlite import SqliteJobStore


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ids(job: Job) -> list[str]:
    return [p.placement_id for p in job.placements]


def test_scale_up_keeps_every_placement_and_places_only_the_rest(clock: Clock) -> None:
    store = MemoryStore()
    fed = make(store, clock)
    job, a, b = spread_over_a_and_b(fed)
    before, generation = ids(job), job.generation

    assert fed.scale(job.job_id, 6) is job
    assert store.docs[job.job_id].spec.replicas == 6  # stored before the call returns, as a submit is
    assert ids(job) == before and job.phase is JobPhase.RUNNING and job.replicas_waiting == 2
    assert job.message.startswith("4 of 6 replicas placed; 2 waiting")
    assert drain(a) == [] and drain(b) == []  # the running parts hear nothing

    fed.schedule_once()
    assert ids(job)[:2] == before and sum(p.replicas for p in job.placements) == 6
    new = job.placements[2:]
    assert new and all(p.generation == generation + 1 for p in new)
    launched = [o.placement.placement_id for rec in (a, b) for o in drain(rec)
                if isinstance(o, LaunchOrder)]
    assert sorted(launched) == sorted(p.placement_id for p in new)  # launches of the rest, nothing else
    assert job.replicas_waiting == 0 and job.pending_reason is None


def test_a_scale_up_that_does_not_fit_whole_places_what_fits_and_the_rest_waits(clock: Clock) -> None:
    """Outside QA (inference F6): 3 -> 9 with room for 5 more left the job at 3. The rest of a running inference
    job takes what fits now, as a Deployment scales; the remainder waits with its reason, and is placed once
    room appears."""
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)  # 2 x 8 GPUs on each of a and b: room for 2 more on each
    before = ids(job)
    fed.scale(job.job_id, 10)
    fed.schedule_once()
    assert ids(job)[:2] == before and sum(p.replicas for p in job.placements) == 8
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 2
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.INSUFFICIENT_ACCELERATORS
    assert job.message.startswith("8 of 10 replicas placed; 2 waiting: InsufficientAccelerators: "
                                  "only 4 of 6 replicas fit")
    launched = [o for rec in (a, b) for o in drain(rec) if isinstance(o, LaunchOrder)]
    assert sum(o.placement.replicas for o in launched) == 4
    join(fed, "c", region="north")  # room appears: the remainder is placed
    fed.schedule_once()
    assert job.replicas_waiting == 0 and job.pending_reason is None
    assert sum(p.replicas for p in job.placements if p.cluster == "c") == 2


def test_a_running_job_scaled_up_stays_running_while_the_new_replicas_start(clock: Clock) -> None:
    """Outside QA (new user F2): `watch` showed a serving job go back to "Placed ... not started yet" while its
    running parts served untouched, each cluster twice, and a script reading the phase saw a regression that
    did not happen. It stays Running, and its message says what is still starting."""
    from federator.cli.watch import watch_lines

    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    fed.scale(job.job_id, 6)
    fed.schedule_once()
    new = job.placements[2:]
    assert new and all(p.phase is JobPhase.PLACED for p in new)
    assert job.phase is JobPhase.RUNNING
    more = sum(p.replicas for p in new)
    assert job.message.endswith(f"{more} more replicas placed on "
                                f"{', '.join(sorted({p.cluster for p in new}))}, not started yet")
    (line,) = watch_lines([job])
    assert f" Running {','.join(dict.fromkeys(p.cluster for p in job.placements))} " in line  # each cluster once
    for p in new:
        fed.job_update(a if p.cluster == a.name else b, p.placement_id, JobPhase.RUNNING, "")
    assert job.phase is JobPhase.RUNNING and "not started yet" not in job.message


def test_a_spread_job_not_yet_running_anywhere_is_placed_until_every_part_runs(clock: Clock) -> None:
    """The other side of the rule above: a job that never ran is Placed until all its parts run (unchanged)."""
    fed = make(MemoryStore(), clock)
    fed.submit(inference("fresh", replicas=4))
    for name in ("a", "b"):
        join(fed, name)
    fed.schedule_once()
    job = fed.get("fresh")
    assert len({p.cluster for p in job.placements}) == 2 and job.phase is JobPhase.PLACED
    first = job.placements[0]
    rec = fed.clusters[first.cluster]
    fed.job_update(rec, first.placement_id, JobPhase.RUNNING, "")
    assert job.phase is JobPhase.PLACED


def test_scale_down_supersedes_whole_parts_and_the_job_converges(clock: Clock) -> None:
    store = MemoryStore()
    fed = make(store, clock)
    job, a, b = spread_over_a_and_b(fed)
    on_a, on_b = (next(p for p in job.placements if p.cluster == c) for c in ("a", "b"))

    fed.scale(job.job_id, 2)
    assert job.spec.replicas == 2 and ids(job) == [on_a.placement_id]  # one part kept whole, untouched
    assert job.phase is JobPhase.RUNNING and job.replicas_waiting == 0 and job.pending_reason is None
    assert drain(a) == []
    assert [(type(o), o.placement_id) for o in drain(b)] == [(CancelOrder, on_b.placement_id)]
    assert ids(store.docs[job.job_id]) == [on_a.placement_id] and store.docs[job.job_id].spec.replicas == 2
    fed.schedule_once()
    assert ids(job) == [on_a.placement_id]  # nothing owed, nothing placed


def test_a_part_cannot_shrink_so_it_is_replaced_by_a_smaller_one(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    on_a = next(p for p in job.placements if p.cluster == "a")

    fed.scale(job.job_id, 3)  # 2 + 2 cannot become 3 in place: one part goes, and 1 replica is owed
    assert ids(job) == [on_a.placement_id] and job.replicas_waiting == 1
    assert job.pending_reason is not None and "cannot shrink in place" in job.pending_reason.message
    assert any(isinstance(o, CancelOrder) for o in drain(b))
    fed.schedule_once()
    assert ids(job)[0] == on_a.placement_id and sum(p.replicas for p in job.placements) == 3
    assert job.replicas_waiting == 0
    running_on(fed, job, a, b)


def test_scaling_below_every_part_queues_the_job_again_for_the_new_count(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    a = join(fed, "a", region="east")
    job = fed.submit(inference("serve", replicas=3))
    fed.schedule_once()
    (only,) = job.placements
    running_on(fed, job, a)

    fed.scale(job.job_id, 1)
    assert job.phase is JobPhase.PENDING and job.placements == []
    assert [o.placement_id for o in drain(a) if isinstance(o, CancelOrder)] == [only.placement_id]
    fed.schedule_once()
    assert [p.replicas for p in job.placements] == [1] and job.phase is JobPhase.PLACED


def test_a_pending_job_simply_gets_the_new_count(clock: Clock) -> None:
    store = MemoryStore()
    fed = make(store, clock)
    job = fed.submit(inference("serve", replicas=4))
    fed.schedule_once()  # no cluster: parked
    fed.scale(job.job_id, 2)
    assert job.phase is JobPhase.PENDING and store.docs[job.job_id].spec.replicas == 2
    join(fed, "a", region="east")
    fed.schedule_once()
    assert [p.replicas for p in job.placements] == [2]


def test_scaling_to_the_current_count_changes_nothing(clock: Clock) -> None:
    store = MemoryStore()
    fed = make(store, clock)
    job, a, b = spread_over_a_and_b(fed)
    store.docs.clear()
    assert fed.scale(job.job_id, 4) is job
    assert store.docs == {} and drain(a) == [] and drain(b) == []


@pytest.mark.parametrize(("replicas", "problem", "words"), [
    (0, ScaleProblem.INVALID, "replicas: must be at least 1, got 0"),
    (1, ScaleProblem.INVALID, "replicas: 1 is below the job's spec.regions.minRegions (2)"),
    (11, ScaleProblem.INVALID, "spec.replicas: 11 is over this federator's limit of 10"),
], ids=["zero", "below-min-regions", "over-the-limit"])
def test_a_count_a_submit_would_refuse_is_refused_naming_the_field(clock: Clock, replicas: int,
                                                                   problem: ScaleProblem, words: str) -> None:
    store = MemoryStore()
    fed = make(store, clock, limits=Limits(max_replicas_per_job=10))
    job, a, b = spread_over_a_and_b(fed, min_regions=2)
    before = ids(job)
    with pytest.raises(ScaleRefused) as refused:
        fed.scale(job.job_id, replicas)
    assert refused.value.problem is problem and str(refused.value).startswith(words)
    assert job.spec.replicas == 4 and ids(job) == before and store.docs[job.job_id].spec.replicas == 4
    assert drain(a) == [] and drain(b) == []


def test_a_count_over_what_any_job_file_may_hold_is_refused(clock: Clock) -> None:
    fed = make(MemoryStore(), clock, limits=Limits(max_replicas_per_job=100_000, max_accelerators_per_job=10**7))
    job = fed.submit(inference("serve"))
    with pytest.raises(ScaleRefused, match=r"^spec.replicas: must come to an integer from 1 to 10000"):
        fed.scale(job.job_id, 10_001)


def test_training_finished_and_workload_jobs_are_refused(clock: Clock) -> None:
    fed = make(MemoryStore(), clock)
    train = fed.submit(spec("train", replicas=2))
    with pytest.raises(ScaleRefused, match=r"^spec.kind: .* is training work, whose gang size is fixed") as e:
        fed.scale(train.job_id, 4)
    assert e.value.problem is ScaleProblem.NOT_SCALABLE and train.spec.replicas == 2

    done = fed.submit(inference("done"))
    fed.cancel(done.job_id)
    with pytest.raises(ScaleRefused, match="is Cancelled; only a job that has not ended may be scaled") as e:
        fed.scale(done.job_id, 2)
    assert e.value.problem is ScaleProblem.FINISHED

    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "template": {"spec": {"containers": [
                      {"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}}]}}}}
    web = fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                "metadata": {"name": "web"}, "spec": {"workload": deployment}}))
    with pytest.raises(ScaleRefused, match=r"^spec.replicas: is derived from spec.workload") as e:
        fed.scale(web.job_id, 3)
    assert e.value.problem is ScaleProblem.NOT_SCALABLE


def test_a_scale_the_store_does_not_take_changes_nothing_and_tells_no_agent(clock: Clock) -> None:
    class Failing(MemoryStore):
        broken = False

        def put(self, jobs: object) -> None:
            if self.broken:
                raise StoreUnavailable("job store: database or disk is full")
            super().put(jobs)  # type: ignore[arg-type]

    store = Failing()
    fed = make(store, clock)
    job, a, b = spread_over_a_and_b(fed)
    before = ids(job)
    store.broken = True
    with pytest.raises(StoreUnavailable):
        fed.scale(job.job_id, 2)
    assert job.spec.replicas == 4 and ids(job) == before and job.phase is JobPhase.RUNNING
    assert drain(a) == [] and drain(b) == []


@pytest.mark.parametrize("to", [2, 6], ids=["down", "up"])
def test_a_restart_after_the_scale_is_stored_converges(tmp_path: Path, clock: Clock, to: int) -> None:
    db = tmp_path / "jobs.db"
    store = SqliteJobStore(db)
    fed = make(store, clock)  # type: ignore[arg-type]
    job, a, b = spread_over_a_and_b(fed)
    placed = {p.cluster: p.placement_id for p in job.placements}
    fed.scale(job.job_id, to)  # stored; the process dies before any order reaches an agent
    fed.cycles.close()
    store.close()

    store = SqliteJobStore(db)
    again = make(store, clock)  # type: ignore[arg-type]
    job = again.get(job.job_id)
    assert job.spec.replicas == to
    recs = {}
    for name, region in (("a", "east"), ("b", "west")):
        rec = recs[name] = again.connect(cluster=name, region=region, labels={})
        again.job_update(rec, placed[name], JobPhase.RUNNING, "2 of 2 replicas running")
        again.report(rec, capacity(placed[name]))
    again.schedule_once()
    again.schedule_once()  # a second cycle places nothing more
    assert sum(p.replicas for p in job.placements if p.phase.is_active) == to and job.replicas_waiting == 0
    cancelled = [o.placement_id for rec in recs.values() for o in drain(rec) if isinstance(o, CancelOrder)]
    kept = {p.placement_id for p in job.placements}
    assert cancelled == [pid for pid in placed.values() if pid not in kept]  # the superseded part is fenced
    assert (to == 6) == (set(placed.values()) <= kept)
    again.cycles.close()
    store.close()


def part(cluster: str, region: str, replicas: int, *, running: bool = True, generation: int = 1) -> Placement:
    return Placement(placement_id=PlacementId(f"j.g{generation}.{cluster}"), job_id=JobId("j"), cluster=cluster,
                     region=region, replicas=replicas, accelerator_model="", generation=generation,
                     phase=JobPhase.RUNNING if running else JobPhase.PLACED)


@pytest.mark.parametrize(("parts", "replicas", "min_regions", "dropped"), [
    ([part("a", "east", 2), part("b", "west", 2)], 4, 1, []),
    ([part("a", "east", 3), part("b", "west", 1), part("c", "west", 2)], 4, 1, ["c"]),
    ([part("a", "east", 3), part("b", "east", 1)], 4, 2, []),
    ([part("a", "east", 3), part("b", "east", 1), part("c", "east", 1)], 4, 2, ["b", "c"]),
    ([part("a", "east", 2, running=False), part("b", "west", 2)], 2, 1, ["a"]),
    ([part("a", "east", 2), part("b", "west", 2, generation=2)], 2, 1, ["b"]),
    ([part("a", "east", 3), part("b", "west", 3)], 1, 1, ["a", "b"]),
], ids=["fits", "most-replicas-kept", "nothing-over", "min-regions-reachable", "running-first", "oldest-first",
        "none-fits"])
def test_which_parts_are_dropped(parts: list[Placement], replicas: int, min_regions: int,
                                 dropped: list[str]) -> None:
    assert [p.cluster for p in parts_to_drop(parts, replicas, min_regions)] == dropped


WEST = Nearness(preferred=frozenset({"west"}))
NEAR_EAST = Nearness(user_region="east", latency_ms={"east": 0, "central": 40, "west": 90})


@pytest.mark.parametrize(("parts", "replicas", "min_regions", "near", "dropped"), [
    ([part("w", "west", 2), part("c", "central", 1), part("e", "east", 1)], 2, 1, WEST, ["c", "e"]),
    ([part("w", "west", 2), part("v", "west", 1), part("c", "central", 1)], 3, 2, WEST, ["v"]),
    ([part("w", "west", 2), part("c", "central", 1), part("e", "east", 1)], 1, 1, NEAR_EAST, ["w", "c"]),
    ([part("w", "west", 1), part("c", "central", 1)], 1, 1, NEAR_EAST, ["w"]),
    ([part("w", "west", 1), part("c", "central", 1)], 1, 1, Nearness(user_region="east"), ["c"]),
    ([part("w", "west", 2, running=False), part("e", "east", 2)], 2, 1, WEST, ["w"]),
    ([part("w", "west", 2), part("e", "east", 2)], 2, 1, ANYWHERE, ["e"]),
], ids=["preferred-kept", "min-regions-before-preferred", "users-region-kept", "nearer-kept",
        "unknown-latency-is-far-the-oldest-kept", "running-before-preferred", "no-locality-oldest"])
def test_the_parts_near_the_users_are_kept(parts: list[Placement], replicas: int, min_regions: int,
                                           near: Nearness, dropped: list[str]) -> None:
    """Outside QA F10: scaled down, a job kept its spilled far replicas and stopped the ones in its preferred
    region. The farthest and non-preferred parts go first, minRegions kept, Running before starting."""
    assert [p.cluster for p in parts_to_drop(parts, replicas, min_regions, near)] == dropped


def test_many_parts_keep_the_preferred_region_greedily() -> None:
    parts = [part(f"c{i}", f"r{i % 4}", 1) for i in range(EXACT_PARTS + 4)]
    kept = [p for p in parts if p not in parts_to_drop(parts, 4, 1, Nearness(preferred=frozenset({"r3"})))]
    assert {p.region for p in kept} == {"r3"} and len(kept) == 4


def test_many_parts_are_chosen_greedily_within_the_count_and_min_regions() -> None:
    parts = [part(f"c{i}", f"r{i % 4}", 1 + i % 3) for i in range(EXACT_PARTS + 4)]
    for replicas, min_regions in ((10, 4), (5, 5), (3, 3)):
        kept = [p for p in parts if p not in parts_to_drop(parts, replicas, min_regions)]
        held = sum(p.replicas for p in kept)
        assert held <= replicas and len({p.region for p in kept}) + replicas - held >= min_regions
        assert held >= replicas - 2  # parts of 1 to 3 in each region: little is given up


def test_scale_touches_the_job_table_copy_only_through_the_store(clock: Clock) -> None:
    """The live job keeps its identity: watchers, indexes and the cycle's caches hold that object."""
    fed = make(MemoryStore(), clock)
    job, a, b = spread_over_a_and_b(fed)
    fed.scale(job.spec.name, 5)  # by name, as the CLI and kubectl give it
    assert fed.jobs[job.job_id] is job and job.spec == replace(inference("serve"), replicas=5)


def test_the_same_file_submitted_again_after_a_scale_is_the_same_request(clock: Clock) -> None:
    """`federator submit` derives a request id from a file's content: submitted again once the job was scaled, the
    file is the request that made the job, answered with it (as scaled), not refused as a different spec."""
    fed = make(MemoryStore(), clock)
    job = fed.submit(inference("serve"), request_id="file-1")
    fed.scale(job.job_id, 6)
    assert fed.submit(inference("serve"), request_id="file-1") is job and job.spec.replicas == 6
    with pytest.raises(RequestIdConflict):  # anything else that differs is still another request
        fed.submit(replace(inference("serve"), priority=9), request_id="file-1")


def test_the_rest_of_a_scale_up_is_admitted_against_the_queues_quota(clock: Clock) -> None:
    """Scaling is no way around a quota: the rest waits (QuotaExceeded) while the placed replicas serve on."""
    policy = policy_from_document({"queues": {"default": {"quota": {"accelerators": {"H100": 32}}}}})
    fed = make(MemoryStore(), clock, scheduler=Scheduler(policy))
    job, a, b = spread_over_a_and_b(fed)  # 4 x 8 H100: the whole quota
    before = ids(job)
    fed.scale(job.job_id, 6)
    fed.schedule_once()
    assert ids(job) == before and job.replicas_waiting == 2 and job.phase is JobPhase.RUNNING
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.QUOTA_EXCEEDED
    fed.scale(job.job_id, 4)  # back within the quota: nothing is owed, nothing stopped
    assert ids(job) == before and job.replicas_waiting == 0 and job.pending_reason is None
    assert drain(a) == [] and drain(b) == []


def test_a_cycle_planned_before_a_scale_down_does_not_act_on_the_parts_it_knew(clock: Clock) -> None:
    """A cycle runs off the loop: one planned before a scale-down may preempt the job's parts as they were. The
    scale moves the job to its next generation, so that cycle's verdicts on it are stale: the part the scale kept
    serves on, and the preemption waits for a cycle that sees the job as it is."""
    fed = make(MemoryStore(), clock)
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    serve = fed.submit(replace(inference("serve"), preemptible=True))
    fed.schedule_once()
    running_on(fed, serve, a, b)
    fed.report(a, capacity(*(p.placement_id for p in serve.placements if p.cluster == "a"), free=0))
    fed.report(b, capacity(*(p.placement_id for p in serve.placements if p.cluster == "b"), free=0))
    fed.submit(replace(spec("train", replicas=2), priority=10))
    plan = fed.cycles.plan()
    result = compute(plan)
    assert result.preemptions  # the cycle would stop the serving job for the gang

    fed.scale(serve.job_id, 2)
    (kept,) = serve.placements
    fed.cycles.commit(plan, result)
    assert serve.placements == [kept] and serve.phase is JobPhase.RUNNING
