"""Members and the federator agree once the faults stop, whatever the faults were (a property test).

Members are modelled as the agent contract in proto/federator/v1/agent.proto says an agent behaves:
it runs what it is told to launch if it has room (else refuses), acks, reports every phase change,
re-syncs on every new stream (its placements, those that ended, then a capacity report), and may
stop work on its own (eviction, self-fencing). Between those, anything goes wrong: streams break
with orders in flight, agents restart (a simulated member forgets its work, a Kubernetes one keeps
it), clusters go Lost while still running their copies, the federator restarts from its store, users
cancel. Checked after every step: the federator never holds more on a cluster than it has, and a gang's
current placements share its generation (a spread job's parts may be older: one placed again alone).
Checked once every member is back and orders are delivered:
each member runs exactly the placements the federator holds current there, in the phase the federator
records, no job is lost, and no job runs on two clusters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_support import LEASE, LOST_AFTER, Clock, MemoryStore, make

from federator.model import ClusterCapacity, JobKind, JobPhase
from federator.server.federator import ClusterRecord
from federator.server.orders import CancelOrder, LaunchOrder

from builders import cluster, job, pool

MODEL = "NVIDIA-H100-80GB-HBM3"
NODES = 4  # each member: 4 nodes of 8; every replica takes a whole node
NAMES = ("east-1", "west-1", "north-1")
EVENT = st.tuples(st.sampled_from(["submit", "submit", "cycle", "cycle", "deliver", "deliver", "run", "run", "end",
                                   "report", "cancel", "evict", "drop", "rejoin", "rejoin", "restart-agent", "fence",
                                   "time", "restart"]),
                  st.integers(0, 10**6))


@dataclass
class Member:
    """One member cluster as its agent sees it."""

    name: str
    rec: ClusterRecord | None = None  # the agent's current stream, None while it has none
    held: dict[str, JobPhase] = field(default_factory=dict)  # placement id -> phase, of what it runs
    nodes: dict[str, int] = field(default_factory=dict)  # placement id -> nodes it takes
    ended: dict[str, JobPhase] = field(default_factory=dict)  # placements that ended: their final phase

    def used(self) -> int:
        return sum(self.nodes.values())

    def capacity(self) -> ClusterCapacity:
        free = NODES - self.used()
        cap = cluster(self.name, self.name, pool(MODEL, nodes=free, free=8, extra={0: NODES - free})).capacity
        return replace(cap, placement_ids=frozenset(self.held))

    def stop(self, pid: str, phase: JobPhase) -> None:
        self.held.pop(pid, None)
        self.nodes.pop(pid, None)
        self.ended[pid] = phase


@settings(max_examples=int(os.environ.get("FEDERATOR_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENT, min_size=1, max_size=60))
def test_once_the_faults_stop_every_member_runs_exactly_what_the_federator_holds_current_there(
        events: list[tuple[str, int]]) -> None:
    clock = Clock()
    store = MemoryStore()
    fed = make(store, clock)
    members = {name: Member(name) for name in NAMES}
    submitted: list[str] = []

    def update(m: Member, pid: str, phase: JobPhase) -> None:
        if m.rec is not None:
            fed.job_update(m.rec, pid, phase, str(phase))

    def join(m: Member) -> None:
        """A new stream: Hello, then the re-sync the contract asks for, then the first report."""
        m.rec = fed.connect(cluster=m.name, region=m.name, labels={})
        for pid, phase in m.held.items():
            fed.job_update(m.rec, pid, phase, str(phase))
        for pid, phase in m.ended.items():
            fed.job_update(m.rec, pid, phase, str(phase))
        fed.report(m.rec, m.capacity())

    def drop(m: Member) -> None:
        if m.rec is not None:
            fed.disconnect(m.rec)  # what was in flight on the old stream is gone with it
            m.rec = None

    def deliver(m: Member, limit: int) -> None:
        while m.rec is not None and limit > 0 and not m.rec.outbox.empty():
            limit -= 1
            order = m.rec.outbox.get_nowait()
            if order is None:  # the federator ended the stream: reconnect and re-sync
                drop(m)
                join(m)
            elif isinstance(order, LaunchOrder):
                pid = order.placement.placement_id
                if pid in m.held:
                    fed.acked(m.rec, pid)
                elif pid in m.ended:  # it ran here once: the same id never starts twice
                    fed.job_update(m.rec, pid, m.ended[pid], "ended")
                elif m.used() + order.placement.replicas > NODES:
                    fed.refused(m.rec, pid, "no room")
                else:
                    m.held[pid] = JobPhase.PLACED
                    m.nodes[pid] = order.placement.replicas
                    fed.acked(m.rec, pid)
            elif isinstance(order, CancelOrder) and order.placement_id in m.held:
                m.stop(order.placement_id, JobPhase.CANCELLED)
                update(m, order.placement_id, JobPhase.CANCELLED)

    def pick(m: Member, x: int, phases: tuple[JobPhase, ...]) -> str | None:
        pids = sorted(pid for pid, phase in m.held.items() if phase in phases)
        return pids[x % len(pids)] if pids else None

    def apply(event: str, x: int) -> None:
        nonlocal fed
        m = members[NAMES[x % len(NAMES)]]
        if event == "submit":
            kind = (JobKind.TRAINING, JobKind.INFERENCE)[x // 3 % 2]
            spec = job(f"j{len(submitted)}", kind=kind, replicas=1 + x // 6 % 4, gpus=8, cpu=4)
            fed.submit(spec)
            submitted.append(spec.name)
        elif event == "cancel":
            live = [j for j in fed.jobs.values() if not j.phase.is_terminal]
            if live:
                fed.cancel(live[x % len(live)].job_id)
        elif event == "cycle":
            fed.schedule_once()
        elif event == "deliver":
            deliver(m, 1 + x // 3 % 4)
        elif event == "run" and (pid := pick(m, x // 3, (JobPhase.PLACED,))):
            m.held[pid] = JobPhase.RUNNING
            update(m, pid, JobPhase.RUNNING)
        elif event == "end" and (pid := pick(m, x // 3, (JobPhase.RUNNING,))):
            phase = (JobPhase.SUCCEEDED, JobPhase.FAILED)[x // 3 % 5 == 4]
            m.stop(pid, phase)
            update(m, pid, phase)
        elif event == "evict" and (pid := pick(m, x // 3, (JobPhase.PLACED, JobPhase.RUNNING))):
            m.stop(pid, JobPhase.CANCELLED)  # the member stopped it on its own: the job is re-queued
            update(m, pid, JobPhase.CANCELLED)
        elif event == "report" and m.rec is not None:
            fed.report(m.rec, m.capacity())
        elif event == "drop":
            drop(m)
        elif event == "rejoin" and m.rec is None:
            join(m)
        elif event == "restart-agent":  # a simulated member forgets its work; a Kubernetes one keeps it
            drop(m)
            if x // 3 % 2:
                m.held.clear()
                m.nodes.clear()
                m.ended.clear()
            join(m)
        elif event == "fence" and m.rec is None:  # cut off too long: it stops everything it holds
            for pid in list(m.held):
                m.stop(pid, JobPhase.CANCELLED)
        elif event == "time":  # a while without news: leases run out, Partitioned clusters go Lost
            clock.now += (LEASE + 1, LOST_AFTER + LEASE + 1)[x // 3 % 2]
            fed.check_leases()
        elif event == "restart":  # a new federator from the store; every stream is gone
            fed.cycles.close()
            fed = make(store, clock)
            for each in members.values():
                each.rec = None

    def check_federator() -> None:
        held: dict[str, int] = {}
        for j in fed.jobs.values():
            active = [p for p in j.placements if p.phase.is_active]
            # A gang's placements are one generation; a spread job's parts may be older than its newest, when one
            # part was placed again alone (server/partial.py), but never newer.
            if j.spec.kind is JobKind.TRAINING:
                assert all(p.generation == j.generation for p in active), (j.spec.name, j.generation, active)
            assert all(p.generation <= j.generation for p in active), (j.spec.name, j.generation, active)
            if j.spec.kind is JobKind.TRAINING:
                assert len({p.cluster for p in active}) <= 1, f"gang {j.spec.name} split: {active}"
            for p in active:
                held[p.cluster] = held.get(p.cluster, 0) + p.replicas
        over = {c: n for c, n in held.items() if n > NODES}
        assert not over, f"the federator holds more than a cluster has: {over}"

    for m in members.values():
        join(m)
    for event in events:
        apply(*event)
        check_federator()

    # The faults stop: every agent without a stream opens one, orders are delivered, reports come, cycles run,
    # until nothing changes.
    for m in members.values():
        if m.rec is None:
            join(m)
    for _ in range(30):
        before = ({j.job_id: (j.phase, j.generation) for j in fed.jobs.values()},
                  {m.name: dict(m.held) for m in members.values()})
        fed.schedule_once()
        for m in members.values():
            deliver(m, 10**6)
            if m.rec is not None:
                fed.report(m.rec, m.capacity())
            deliver(m, 10**6)
        check_federator()
        after = ({j.job_id: (j.phase, j.generation) for j in fed.jobs.values()},
                 {m.name: dict(m.held) for m in members.values()})
        if before == after and all(m.rec is not None and m.rec.outbox.empty() for m in members.values()):
            break
    else:
        raise AssertionError("30 quiet rounds and the members still change")
    fed.cycles.close()

    names = {j.spec.name for j in fed.jobs.values()}
    assert names == set(submitted), f"lost: {set(submitted) - names}"
    current = {m.name: {p.placement_id: p.phase for j in fed.jobs.values() if not j.phase.is_terminal
                        for p in j.placements if p.cluster == m.name and p.phase.is_active}
               for m in members.values()}
    for m in members.values():
        assert m.held == current[m.name], f"{m.name} runs {m.held}, the federator holds {current[m.name]} there"
    for j in fed.jobs.values():
        on = {p.cluster for p in j.placements if p.phase.is_active}
        if j.spec.kind is JobKind.TRAINING:
            assert len(on) <= 1
        if j.phase is JobPhase.RUNNING:
            assert all(p.phase is JobPhase.RUNNING for p in j.placements)
