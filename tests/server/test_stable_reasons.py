"""A parked job's stored reason stays as it was while its situation does: the jobs of its queue that go before its
owner's are told as a range (scheduler/owner_share.py `about`), so a job arriving ahead of it, counted when the job is
looked at again (a restart's first cycle looks at every job), rewrites nothing (kubescaleqa62 H1, M2: in Kubernetes
mode each rewording is a PATCH of a FederatedJob's status; most of ~545 after a restart with 500 jobs)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from server_support import Clock, MemoryStore, make

from federator.model import JobSpec, ReasonCode
from federator.security.authz import recorded_owner
from federator.server.federator import Federator

from builders import cluster, job, pool

A100 = "NVIDIA-A100-SXM4-80GB"


class CountingStore(MemoryStore):
    """The store of tests/server, counting the writes of each job (a status PATCH each, in Kubernetes mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: Counter[str] = Counter()

    def put(self, jobs):  # type: ignore[no-untyped-def]
        jobs = list(jobs)
        self.writes.update(j.spec.name for j in jobs)
        super().put(jobs)


def _full(fed: Federator) -> None:
    """member-b: four A100 nodes, none free: every job waits for room."""
    rec = fed.connect(cluster="member-b", region="r", labels={})
    fed.report(rec, cluster("member-b", "r", pool(A100, nodes=0, extra=Counter({0: 4}))).capacity)


def _gang(name: str, user: str) -> JobSpec:
    return recorded_owner(job(name, gpus=8, models=("A100",)), user)


def _stored(store: MemoryStore, name: str) -> str:
    reason = next(j.pending_reason for j in store.load() if j.spec.name == name)
    assert reason is not None
    return str(reason)


def _waiting(store: CountingStore, clock: Clock) -> Federator:
    """A federator over `store` whose one member is full, 12 gangs of alice's then 3 of bob's submitted, waiting
    after a cycle, and their reasons stored."""
    fed = make(store, clock)
    _full(fed)
    for i in range(12):
        fed.submit(_gang(f"a{i}", "alice"))
    for i in range(3):
        fed.submit(_gang(f"b{i}", "bob"))
    fed.schedule_once()
    fed.journal.drain()
    return fed


def test_a_parked_jobs_stored_reason_is_unchanged_when_another_job_arrives_ahead_of_it_in_its_queue() -> None:
    store, clock = CountingStore(), Clock()
    fed = _waiting(store, clock)
    before = _stored(store, "b0")
    assert before.startswith(ReasonCode.INSUFFICIENT_ACCELERATORS), before
    assert "12" in before or "10 to 19" in before, before  # the jobs of alice's that go before bob's
    assert len(fed.cycles.parked) == 15

    fed.submit(_gang("a-late", "alice"))  # alice's 13th: ahead of bob's (she holds as much, and asked first)
    fed.schedule_once()
    fed.journal.drain()
    store.writes.clear()
    clock.now += 60
    again = make(store, clock)  # a restart: its first cycle looks at every waiting job, the newcomer counted
    _full(again)
    again.schedule_once()
    again.journal.drain()
    assert _stored(store, "b0") == before
    assert not store.writes["b0"] and not store.writes["b1"] and not store.writes["b2"], store.writes
    assert before.endswith("; 10 to 19 waiting jobs of queue default go before its owner's: 10 to 19 of users "
                           "holding as much, submitted earlier"), before


def test_a_group_asked_again_after_a_report_counts_the_parked_jobs_ahead_of_its_owners() -> None:
    """A report brings back one job of a parked group to ask its reason again (reason_refresh.py); its cycle holds
    that job, one of alice's and her newcomer, not the 11 of alice's still parked. Counted over the cycle alone,
    bob's jobs read "2 to 4 waiting jobs ... go before its owner's" behind 12, and the next full cycle (a restart's)
    rewrote all three back. The parked jobs are counted (scheduler/parked_line.py): the count stays the queue's."""
    store, clock = CountingStore(), Clock()
    fed = _waiting(store, clock)
    assert "; 10 to 19 waiting jobs of queue default go before its owner's" in _stored(store, "b0")

    fed.submit(_gang("a-late", "alice"))  # alice's 13th, after bob's: it goes after them
    rec = fed.connect(cluster="member-b", region="r", labels={})
    held = replace(pool(A100, nodes=0, extra=Counter({0: 4})), quota_held_accelerators=4)
    four = cluster("member-b", "r", held).capacity
    fed.report(rec, four)  # the member's own quota holds 4 back now: the parked groups' reasons say so
    fed.schedule_once()
    fed.journal.drain()
    told = _stored(store, "b0")
    assert "(4 more free held back by the member's own queue quota)" in told, told
    assert told.endswith("; 10 to 19 waiting jobs of queue default go before its owner's: 10 to 19 of users "
                         "holding as much, submitted earlier"), told
    assert _stored(store, "b1") == _stored(store, "b2") == told

    store.writes.clear()
    clock.now += 60
    again = make(store, clock)  # a restart: its first cycle looks at every waiting job
    rec = again.connect(cluster="member-b", region="r", labels={})
    again.report(rec, four)
    again.schedule_once()
    again.journal.drain()
    assert _stored(store, "b0") == told
    assert not store.writes["b0"] and not store.writes["b1"] and not store.writes["b2"], store.writes


def test_a_second_cycle_over_the_same_room_tells_a_waiting_job_the_same_words() -> None:
    """Stop 62's CI (1 run in 6): one node of 8 H100; a 4, a 2, a 4, a 2. The second 4 found 2 free at its turn and
    was told "the most free on one node is 2", room the last 2 then took: its stored reason (a FederatedJob's status
    in Kubernetes mode) was false from that cycle on, and a restart's first cycle, which asks every waiting job
    again over the same room, reworded it: a status write. Its words now name no free room (scheduler/node_size.py)."""
    h100 = "NVIDIA-H100-80GB-HBM3"
    store, clock = CountingStore(), Clock()
    fed = make(store, clock)
    rec = fed.connect(cluster="member-a", region="r", labels={})
    node = replace(pool(h100, nodes=1), largest_node_accelerators=8)
    fed.report(rec, cluster("member-a", "r", node).capacity)
    for name, gpus in (("four-a", 4), ("two-a", 2), ("four-b", 4), ("two-b", 2)):
        fed.submit(recorded_owner(job(name, gpus=gpus, models=("H100",)), "alice"))
        clock.now += 1  # the queue's order is the submissions'
    fed.schedule_once()
    fed.journal.drain()
    assert sorted(j.spec.name for j in fed.jobs.values() if j.placements) == ["four-a", "two-a", "two-b"]
    told = _stored(store, "four-b")

    store.writes.clear()
    clock.now += 60
    again = make(store, clock)  # a restart: its first cycle looks at every waiting job
    rec = again.connect(cluster="member-a", region="r", labels={})
    held = [p for j in again.jobs.values() for p in j.placements if p.phase.is_active]
    full = cluster("member-a", "r", replace(node, nodes_by_free=(1,) + (0,) * 8)).capacity  # the room left: none
    again.report(rec, replace(full, placement_ids=frozenset(p.placement_id for p in held)))
    again.schedule_once()
    again.schedule_once()
    again.journal.drain()
    assert _stored(store, "four-b") == told
    assert not store.writes["four-b"], store.writes
    assert told == f"{ReasonCode.INSUFFICIENT_ACCELERATORS}: 0/1 clusters fit: member-a has no node with 4 free " \
                   f"{h100} accelerators", told  # true of the room the first cycle left
