"""The reserve phase's cost with a national backlog (scheduler/reservation.py; soak finding S2): ten minutes after a
backlog formed, thousands of its gangs were due, `choose` tried each on all 100 clusters while fewer than
`max_reservations` were found, and most found none (no pool big enough, or blocked by their own queue's work): the
phase went from 26 ms to 6.7 s a cycle. Gangs of one queue and fit shape pick alike, so one that found nothing
says so of the others, and the cycle-constant filters are asked once per fit shape and cluster."""

from __future__ import annotations

import random
from dataclasses import replace

from scenarios import A100, H100, spec

from federator.model import ClusterInfo
from federator.scheduler import PlacementRequest
from federator.scheduler.reservation import ReservationPolicy, _pick, _pick_once, _Rooms, choose

from builders import cluster, pool, request

LATE = 10_000.0
POLICY = ReservationPolicy(after_seconds=600, max_reservations=3)
CLUSTERS = [cluster(f"c{i:03d}", "r", pool(H100, nodes=1, free=0, gpus_per_node=16)) for i in range(100)]


def backlog(per_shape: int) -> list[PlacementRequest]:
    """Due gangs of three shapes none of which can reserve room: two 16-H100 replicas (one 16-GPU node per
    cluster: no pool could hold them), 8 A100 (no cluster has any), 8 H100 of queue `mine` (whose own work
    fills every H100: self-blocked). They are older, so tried first, than the two gangs that can reserve."""
    out: list[PlacementRequest] = []
    for i in range(per_shape):
        out.append(request(spec(f"wide{i}", gpus=16, replicas=2, queue=f"org{i % 7}", models=(H100,)), at=i))
        out.append(request(spec(f"a100-{i}", gpus=8, queue=f"org{i % 5}", models=(A100,)), at=i))
        out.append(request(spec(f"mine{i}", gpus=8, queue="mine", models=(H100,)), at=i))
    out += [request(spec(f"fits{i}", gpus=8, queue="other", models=(H100,)), at=LATE - 700) for i in range(2)]
    return out


class Counting:
    """A cycle-constant filter (the model a cluster has), counting how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, r: PlacementRequest, c: ClusterInfo) -> bool:
        self.asked += 1
        return any(p.accelerator_model in r.spec.accelerator_models for p in c.capacity.accelerator_pools)


def run(per_shape: int) -> tuple[list[tuple[str, str, int]], int]:
    could = Counting()
    got = choose(backlog(per_shape), CLUSTERS, {}, POLICY, now=LATE, ways=lambda r: (r,), admit=lambda r: r,
                 could=could, own=lambda queue, cluster, model: 16 if queue == "mine" else 0)
    return [(g.reservation.job_id, g.reservation.cluster, g.reservation.short) for g in got], could.asked


def test_five_thousand_due_gangs_that_find_no_room_cost_one_look_per_shape_and_cluster() -> None:
    chosen, asked = run(1_667)  # 5,001 due gangs that find nothing, of 3 shapes (4 with the two that fit)
    assert chosen == [("fits0", "c000", 8), ("fits1", "c000", 8)]
    shapes = 4
    assert asked <= shapes * len(CLUSTERS)  # on main: 500,300 (every gang on every cluster)


def test_the_choices_do_not_depend_on_how_many_gangs_of_a_shape_found_nothing_before() -> None:
    assert run(1)[0] == run(50)[0] == [("fits0", "c000", 8), ("fits1", "c000", 8)]


def test_a_new_gangs_cheap_pick_is_the_full_picks_answer() -> None:
    """`_pick_once` against `_pick` (every alternative on every cluster, as before S2) on random fleets: pools of
    two models with random free nodes, queues whose own work blocks some pools, gangs of two alternatives."""
    rng = random.Random(58)
    policy = ReservationPolicy(after_seconds=600, max_reservations=3)
    for _ in range(40):
        fleet = [cluster(f"c{i}", "r", *[pool(m, nodes=rng.randint(0, 2), free=rng.randint(0, 8),
                                              extra={rng.randint(0, 8): rng.randint(0, 2)})
                                         for m in rng.sample([H100, A100], rng.randint(1, 2))])
                 for i in range(rng.randint(1, 8))]
        holds = {(q, c.name, m): rng.choice([0, 0, 4, 16]) for q in "ab" for c in fleet for m in (H100, A100)}

        def own(queue: str, name: str, model: str, holds: dict[tuple[str, str, str], int] = holds) -> int:
            return holds[(queue, name, model)]

        def ways(r: PlacementRequest) -> tuple[PlacementRequest, ...]:
            return (r, replace(r, spec=replace(r.spec, accelerator_models=(A100,))))

        by_name = {c.name: c for c in fleet}
        rooms, found_none = _Rooms(fleet, Counting()), set[tuple[object, ...]]()
        for i in range(30):
            g = request(spec(f"g{i}", gpus=rng.choice([2, 4, 8]), replicas=rng.randint(1, 3), queue=rng.choice("ab"),
                             models=(rng.choice([H100, A100]),)), at=0)
            full = _pick(g, fleet, by_name, None, policy, now=LATE, ways=ways, admit=lambda r: r, could=Counting(),
                         own=own)
            cheap = _pick_once(g, fleet, by_name, None, policy, now=LATE, ways=ways, admit=lambda r: r,
                               could=Counting(), own=own, found_none=found_none, rooms=rooms)
            assert cheap == full
