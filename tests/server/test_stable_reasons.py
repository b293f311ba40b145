"""A parked job's stored reason stays as it was while its situation does: the jobs of its queue that go before its
owner's are told as a range (scheduler/owner_share.py `about`), so a job arriving ahead of it, counted when the job is
looked at again (a restart's first cycle looks at every job), rewrites nothing (kubescaleqa62 H1, M2: in Kubernetes
mode each rewording is a PATCH of a FederatedJob's status; most of ~545 after a restart with 500 jobs)."""

from __future__ import annotations

from collections import Counter

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
    four = cluster("member-b", "r", pool(A100, nodes=0, extra=Counter({4: 1, 0: 3}))).capacity
    fed.report(rec, four)  # the most free on one node is 4 now: the parked groups' reasons say so
    fed.schedule_once()
    fed.journal.drain()
    told = _stored(store, "b0")
    assert "the most free on one node is 4" in told, told
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
