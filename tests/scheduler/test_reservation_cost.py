"""The reserve phase's cost with a national backlog (scheduler/reservation.py; soak finding S2): ten minutes after a
backlog formed, thousands of its gangs were due, `choose` tried each on all 100 clusters while fewer than
`max_reservations` were found, and most found none (no pool big enough, or blocked by their own queue's work): the
phase went from 26 ms to 6.7 s a cycle. Gangs of one queue and fit shape pick alike, so one that found nothing
says so of the others, and the cycle-constant filters are asked once per fit shape and cluster."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace

from scenarios import A100, H100, spec

from federator.model import ClusterInfo
from federator.scheduler import PlacementRequest
from federator.scheduler.framework import accepted_pools
from federator.scheduler.reservation import (
    GangReservation,
    Reservation,
    ReservationPolicy,
    _pick,
    _Rooms,
    _Shared,
    choose,
    due,
    self_blocked,
    shortfall,
)

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


def reference_pick(request: PlacementRequest, clusters: list[ClusterInfo], before: Reservation | None,
                   policy: ReservationPolicy, *, now: float,
                   ways: Callable[[PlacementRequest], Sequence[PlacementRequest]],
                   could: Callable[[PlacementRequest, ClusterInfo], bool],
                   own: Callable[[str, str, str], int]) -> GangReservation | None:
    """A gang's pick as plainly as it can be said (the full pick before S2, admit = every request as it is):
    every alternative on every cluster, each pool's key (its reserved pool first, then fewest to free, cluster,
    model), the least kept, the first of equals."""
    best: tuple[tuple[int, int, str, str], PlacementRequest] | None = None
    for admitted in ways(request):
        if not due(admitted, policy, now):
            continue
        for c in clusters:
            if not could(admitted, c):
                continue
            for p in accepted_pools(admitted, c):
                short = shortfall(admitted, p)
                if short is None or self_blocked(admitted, p, own(request.spec.queue, c.name, p.accelerator_model)):
                    continue
                sticky = 0 if before is not None and (c.name, p.accelerator_model) == (
                    before.cluster, before.accelerator_model) else 1
                key = (sticky, short, c.name, p.accelerator_model)
                if best is None or key < best[0]:
                    best = (key, admitted)
    if best is None or (before is None and best[0][1] == 0):
        return None
    (_, short, name, model), chosen = best
    since = before.since if before is not None and before.cluster == name else now
    began = before.first_reserved if before is not None else now
    needed = chosen.replicas * chosen.accelerators_per_replica
    return GangReservation(Reservation(request.job_id, name, model, request.spec.priority, since, needed, short,
                                       began), chosen)


def test_the_pick_is_the_plain_picks_answer_for_new_gangs_and_reserving_ones() -> None:
    """`_pick` (one pick, on `_Rooms` and `_Shared`: review59 R1 folded the cheap copy for new gangs and the full
    pick for reserving ones into it) against `reference_pick` on random fleets: pools of two models with random free
    nodes, queues whose own work blocks some pools, gangs of two alternatives, half of them holding a reservation
    from before (on a cluster and model that may be gone, blocked or no longer hold them)."""
    rng = random.Random(58)
    policy = ReservationPolicy(after_seconds=600, max_reservations=3)
    sticky = 0
    for _ in range(60):
        fleet = [cluster(f"c{i}", "r", *[pool(m, nodes=rng.randint(0, 2), free=rng.randint(0, 8),
                                              extra={rng.randint(0, 8): rng.randint(0, 2)})
                                         for m in rng.sample([H100, A100], rng.randint(1, 2))])
                 for i in range(rng.randint(1, 8))]
        holds = {(q, c.name, m): rng.choice([0, 0, 4, 16]) for q in "ab" for c in fleet for m in (H100, A100)}

        def own(queue: str, name: str, model: str, holds: dict[tuple[str, str, str], int] = holds) -> int:
            return holds.get((queue, name, model), 0)

        def ways(r: PlacementRequest) -> tuple[PlacementRequest, ...]:
            return (r, replace(r, spec=replace(r.spec, accelerator_models=(A100,))))

        could = Counting()
        rooms, found_none = _Rooms(fleet, _Shared(could)), set[tuple[object, ...]]()
        for i in range(30):
            g = request(spec(f"g{i}", gpus=rng.choice([2, 4, 8]), replicas=rng.randint(1, 3), queue=rng.choice("ab"),
                             models=(rng.choice([H100, A100]),)), at=0)
            before = None if rng.random() < 0.5 else Reservation(
                g.job_id, f"c{rng.randint(0, 8)}", rng.choice([H100, A100]), 0, since=LATE - rng.choice([0, 60]),
                needed=8, short=4, began=rng.choice([None, LATE - 900]))
            want = reference_pick(g, fleet, before, policy, now=LATE, ways=ways, could=could, own=own)
            got = _pick(g, before, policy, now=LATE, ways=ways, admit=lambda r: r, own=own, found_none=found_none,
                        rooms=rooms)
            assert got == want
            sticky += want is not None and before is not None and want.reservation.cluster == before.cluster
    assert sticky > 10  # the reserving gangs kept their room often enough for the comparison to mean something
