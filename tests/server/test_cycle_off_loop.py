"""The live federator's cycle runs off the event loop, commits only what is still true, and parks what fits nowhere.

A scheduler that holds its cycle until the test lets it go stands for a cycle
over a huge backlog: nothing here depends on how fast the machine is. What is
checked is *order* on the real agent stream: the federator answers a report
while the cycle is still running.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from agent_stream import agent_stream
from server_support import H100, Clock, MemoryStore, capacity, join, make, spec

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.model import ClusterCapacity, ClusterState, JobKind, JobPhase, ReasonCode
from federator.scheduler import CycleResult, PlacementRequest, Scheduler, Snapshot
from federator.security.auth import Authenticator
from federator.security.limits import Limits
from federator.server.federator import ClusterRecord, Federator
from federator.server.orders import CancelOrder, LaunchOrder
from federator.server.services import JobService
from federator.store import SqliteJobStore

A_WHILE = 60.0  # only a guard against a hang: no assertion depends on it


class HeldScheduler:
    """Schedules for real, but holds each cycle open until `release` is set (a cycle over a huge backlog).

    It wraps the Scheduler rather than subclassing it: the compiled build (setup.py) cannot be subclassed."""

    def __init__(self) -> None:
        self.inner = Scheduler()
        self.config = self.inner.config
        self.started = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def schedule(self, snapshot: Snapshot, requests: Sequence[PlacementRequest], **kw: Any) -> CycleResult:
        self.started.set()
        self.release.wait(A_WHILE)
        try:
            return self.inner.schedule(snapshot, requests, **kw)
        finally:
            self.finished.set()


def _report(*placement_ids: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity(*placement_ids)))


def test_an_agent_report_is_answered_and_its_lease_kept_while_a_cycle_over_a_backlog_runs() -> None:
    async def scenario() -> None:
        held = HeldScheduler()
        fed = Federator(store=MemoryStore(), scheduler=held, lease_seconds=10.0, cycle_interval=0.05)
        for i in range(2_000):  # a backlog nothing can hold: 16 accelerators per replica
            fed.submit(spec(f"big-{i}", gpus=16))
        async with agent_stream(fed) as agent:
            try:
                await agent.send(_report())
                assert await asyncio.to_thread(held.started.wait, A_WHILE)  # a cycle is now running
                # The agent reports a placement the federator never gave it: the answer is a Cancel, on the
                # same stream, and it comes while the cycle is still running.
                await agent.send(_report("stray.g1.east-1"))
                answer = await agent.read()
                cycle_was_running = not held.finished.is_set()
                rec = fed.clusters["east-1"]
                fed.check_leases()
                state_during_cycle = rec.state
                held.release.set()
                assert answer.WhichOneof("body") == "cancel" and answer.cancel.placement_id == "stray.g1.east-1"
                assert cycle_was_running, "the report was answered only after the cycle ended"
                assert state_during_cycle is ClusterState.READY and rec.connected
                assert await asyncio.to_thread(held.finished.wait, A_WHILE)
            finally:
                held.release.set()  # before the stream's teardown, which waits for the cycle's thread
        waiting = [j for j in fed.jobs.values() if j.phase is JobPhase.PENDING]
        assert len(waiting) == 2_000 and fed.cycles.cycles >= 1

    asyncio.run(scenario())


def test_a_job_cancelled_while_its_cycle_runs_is_not_placed_and_never_launched() -> None:
    async def scenario() -> None:
        held = HeldScheduler()
        fed = Federator(store=MemoryStore(), scheduler=held, cycle_interval=0.05)
        rec = join(fed, "east-1")
        job = fed.submit(spec("short-lived", gpus=1))
        cycle = asyncio.get_running_loop().create_task(fed.cycles.run_once_async())
        assert await asyncio.to_thread(held.started.wait, A_WHILE)
        fed.cancel(job.job_id)  # the cycle, on its thread, is about to place it
        held.release.set()
        result = await cycle
        fed.cycles.close()
        assert [d.job_id for d in result.decisions] == [job.job_id]  # the cycle did decide to place it...
        assert fed.jobs[job.job_id].phase is JobPhase.CANCELLED  # ...but the cancel stands
        assert fed.jobs[job.job_id].placements == []
        sent = []
        while not rec.outbox.empty():
            sent.append(rec.outbox.get_nowait())
        assert not any(isinstance(o, LaunchOrder) for o in sent), sent

    asyncio.run(scenario())


def _h100(rec_name: str, *placement_ids: str, nodes: int = 4, free: int = 8, busy: int = 0,
          cpu: int = 1000) -> ClusterCapacity:
    """A report of `nodes` H100 nodes with `free` free each, and `busy` more with none free."""
    from builders import cluster, pool

    cap = cluster(rec_name, "r", pool(H100, nodes=nodes, free=free, extra={0: busy}), cpu=cpu).capacity
    return replace(cap, placement_ids=frozenset(placement_ids))


def test_a_job_that_fits_nowhere_is_parked_until_a_pool_holds_it() -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock)
    rec = join(fed, "east-1")  # 4 nodes of 8 free H100
    huge = fed.submit(spec("huge", gpus=8, replicas=5))
    small = fed.submit(spec("small", gpus=1))
    fed.schedule_once()
    assert fed.jobs[small.job_id].phase is JobPhase.PLACED
    assert fed.jobs[huge.job_id].pending_reason is not None
    assert fed.jobs[huge.job_id].pending_reason.code is ReasonCode.GANG_DOES_NOT_FIT
    assert huge.job_id in fed.cycles.parked
    later = fed.submit(spec("later", gpus=1))
    assert [r.job_id for r in fed.cycles.plan().requests] == [later.job_id]  # the parked job costs nothing
    placed = f"{small.job_id}.g1.east-1"
    fed.report(rec, capacity(placed))  # the same capacity as before: still parked
    assert huge.job_id in fed.cycles.parked
    fed.report(rec, capacity(placed, free=7))  # the H100 pool changed, but no 5 nodes hold 8 each
    assert huge.job_id in fed.cycles.parked
    fed.report(rec, _h100("east-1", placed, nodes=5))  # a fifth node joined: now they may
    assert huge.job_id not in fed.cycles.parked
    assert huge.job_id in {r.job_id for r in fed.cycles.plan().requests}


def test_a_job_pinned_by_the_short_name_of_a_model_comes_back_when_that_pool_holds_it() -> None:
    from builders import job

    fed = make(MemoryStore(), Clock())
    rec = join(fed, "east-1")  # 4 nodes of 8 free NVIDIA-H100-80GB-HBM3
    huge = fed.submit(job("huge", gpus=8, replicas=5, models=("H100",)))  # as users write it
    fed.schedule_once()
    assert huge.job_id in fed.cycles.parked
    fed.report(rec, _h100("east-1", nodes=5))  # only the H100 pool moved (no CPU or memory freed)
    assert huge.job_id not in fed.cycles.parked


def test_a_report_brings_back_only_the_parked_jobs_its_pool_now_holds() -> None:
    """A busy fleet's reports move some pool every few seconds: a gang waiting for whole nodes must not come
    back every time one GPU frees, nor a job that names no model on every report of every cluster."""
    from builders import job

    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="east-1", region="r", labels={})
    fed.report(rec, _h100("east-1", nodes=0, busy=4))  # every H100 taken by work the federator did not place
    gang = fed.submit(job("gang", gpus=8, replicas=2))  # two whole nodes
    one = fed.submit(job("one", gpus=1))
    half = fed.submit(job("half", gpus=0.5))
    spread = fed.submit(job("spread", kind=JobKind.INFERENCE, gpus=8, replicas=3))  # one replica is a start
    fat = fed.submit(job("fat", gpus=1, cpu=200))  # more CPU than any node has
    cpu_only = fed.submit(job("cpu-only", cpu=200))
    fed.schedule_once()
    assert {j.job_id for j in (gang, one, half, spread, fat, cpu_only)} <= set(fed.cycles.parked._where)

    def back() -> set[str]:
        return {j.spec.name for j in fed.jobs.values() if j.phase is JobPhase.PENDING
                and j.job_id not in fed.cycles.parked}

    fed.report(rec, _h100("east-1", nodes=1, free=4, busy=3))  # 4 GPUs free on one node
    assert back() == {"one", "half"}
    fed.schedule_once()  # both placed
    fed.report(rec, _h100("east-1", nodes=1, free=8, busy=3))  # a whole node
    assert back() == {"spread"}  # one replica here, the others maybe elsewhere; not the gang of two
    fed.schedule_once()  # three replicas do not fit one node: parked again
    fed.report(rec, _h100("east-1", nodes=2, free=8, busy=2))  # two
    assert back() == {"gang", "spread"}
    fed.report(rec, _h100("east-1", nodes=2, free=8, busy=2, cpu=2000))  # more CPU: still no node of 200
    assert back() == {"gang", "spread"}
    fed.schedule_once()
    fed.cycles.close()


def test_a_cluster_running_preemptible_work_brings_back_every_job_of_a_changed_pool() -> None:
    """A job may fit by preempting, which the free room does not show: a gang of 3 whole nodes waits beside a
    preemptible job on one node; other work leaves two more. Free room holds two, preemption makes three."""
    from builders import job

    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="east-1", region="r", labels={})
    fed.report(rec, _h100("east-1", nodes=1, busy=3))  # one node free, three taken by others
    low = fed.submit(replace(job("low", gpus=8, priority=0), preemptible=True))
    fed.schedule_once()
    placed = low.placements[0].placement_id
    fed.acked(rec, placed)
    fed.report(rec, _h100("east-1", placed, nodes=0, busy=4))
    high = fed.submit(job("high", gpus=8, replicas=3, priority=100))
    fed.schedule_once()
    assert high.job_id in fed.cycles.parked  # one node by preemption, not three
    fed.report(rec, _h100("east-1", placed, nodes=2, busy=2))  # others left two nodes
    assert high.job_id not in fed.cycles.parked
    fed.schedule_once()
    assert fed.jobs[high.job_id].phase is JobPhase.PLACED and fed.jobs[low.job_id].phase is JobPhase.PENDING
    fed.cycles.close()


def test_more_cpu_in_a_cluster_brings_back_only_the_parked_jobs_that_may_run_there() -> None:
    from builders import cluster, job, pool

    def report(rec: ClusterRecord, model: str, cpu: int) -> None:
        fed.report(rec, cluster(rec.name, "r", pool(model, nodes=1, free=8), cpu=cpu).capacity)

    fed = make(MemoryStore(), Clock())
    h100, a100 = "NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"
    nvidia_h = fed.connect(cluster="h", region="r", labels={})
    nvidia_a = fed.connect(cluster="a", region="r", labels={})
    report(nvidia_h, h100, 100)
    report(nvidia_a, a100, 100)
    # accelerators are free, but no node has 110 CPUs: both park
    pinned = fed.submit(job("pinned", gpus=8, cpu=110, models=("A100",)))
    flexible = fed.submit(job("flexible", gpus=8, cpu=110))
    fed.schedule_once()
    assert pinned.job_id in fed.cycles.parked and flexible.job_id in fed.cycles.parked
    report(nvidia_h, h100, 200)  # a pod ended on the H100 cluster: CPU only
    assert pinned.job_id in fed.cycles.parked  # it cannot run there whatever the CPU
    assert flexible.job_id not in fed.cycles.parked
    report(nvidia_a, a100, 200)
    assert pinned.job_id not in fed.cycles.parked


def test_a_finished_job_brings_back_the_parked_jobs_of_its_pool() -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock)
    join(fed, "east-1")
    first = fed.submit(spec("first", gpus=8, replicas=4))
    second = fed.submit(spec("second", gpus=8, replicas=4))
    fed.schedule_once()
    assert fed.jobs[first.job_id].phase is JobPhase.PLACED and second.job_id in fed.cycles.parked
    fed.cancel(first.job_id)
    assert second.job_id not in fed.cycles.parked
    fed.schedule_once()
    assert fed.jobs[second.job_id].phase is JobPhase.PLACED
    assert any(isinstance(o, CancelOrder) for o in _drain(fed))


def _room_frees_while_a_cycle_runs(event: str) -> None:
    async def scenario() -> None:
        held = HeldScheduler()
        held.release.set()
        fed = Federator(store=MemoryStore(), scheduler=held, cycle_interval=A_WHILE)
        rec = join(fed, "east-1")  # 4 nodes of 8 free H100
        if event == "finish":  # `first` holds the nodes until it ends
            first = fed.submit(spec("first", gpus=8, replicas=4))
            await fed.cycles.run_once_async()
        elif event == "cancel":  # `first` is placed by the same cycle, ahead of `second`
            first = fed.submit(spec("first", gpus=8, replicas=4))
        else:  # something the federator did not place holds them until a report frees them
            fed.report(rec, capacity(free=0))
        held.release.clear()
        held.started.clear()
        second = fed.submit(spec("second", gpus=8, replicas=4))
        cycle = asyncio.get_running_loop().create_task(fed.cycles.run_once_async())
        assert await asyncio.to_thread(held.started.wait, A_WHILE)
        # The cycle's snapshot has no room for `second`; the room comes while it runs.
        if event == "finish":
            fed.job_update(rec, first.placements[0].placement_id, JobPhase.SUCCEEDED, "done")
            assert fed.jobs[first.job_id].phase is JobPhase.SUCCEEDED
        elif event == "cancel":  # the room the cycle gives `first` is not taken after all
            fed.cancel(first.job_id)
        else:
            fed.report(rec, capacity())
        held.release.set()
        result = await cycle
        assert second.job_id in result.pending  # the stale verdict...
        assert second.job_id not in fed.cycles.parked  # ...does not park the job beside the room that came
        await fed.cycles.run_once_async()  # no later event: the next cycle alone must place it
        fed.cycles.close()
        assert fed.jobs[second.job_id].phase is JobPhase.PLACED
        assert fed.jobs[second.job_id].placements[0].cluster == "east-1"

    asyncio.run(scenario())


def test_a_gang_whose_room_is_freed_by_a_job_ending_while_its_cycle_runs_is_placed_by_the_next() -> None:
    _room_frees_while_a_cycle_runs("finish")


def test_a_gang_whose_room_is_freed_by_a_report_while_its_cycle_runs_is_placed_by_the_next() -> None:
    _room_frees_while_a_cycle_runs("report")


def test_a_gang_whose_room_the_cycle_gave_a_job_cancelled_while_it_ran_is_placed_by_the_next() -> None:
    _room_frees_while_a_cycle_runs("cancel")


def _drain(fed: Federator) -> list[object]:
    out = []
    for rec in fed.clusters.values():
        while not rec.outbox.empty():
            out.append(rec.outbox.get_nowait())
    return out


def test_submit_is_refused_with_retry_advice_when_the_queue_is_full_and_nothing_accepted_is_lost(
        tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"

    async def scenario() -> tuple[list[str], grpc.aio.AioRpcError]:
        fed = Federator(store=SqliteJobStore(db), limits=Limits(max_pending_jobs=3, max_pending_jobs_per_queue=3,
                                                                max_pending_jobs_per_user=3,
                                                                queue_full_retry_seconds=2))
        server = grpc.aio.server()
        jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True)), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        accepted: list[str] = []
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                calls = [stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec(f"j-{i}", gpus=1))))
                         for i in range(5)]
                refused: grpc.aio.AioRpcError | None = None
                for call in calls:
                    try:
                        accepted.append((await call).job.job_id)
                    except grpc.aio.AioRpcError as err:
                        refused = err
                        assert (await call.trailing_metadata()) is not None
                assert refused is not None
                full = fed.metrics.registry.get_sample_value("federator_messages_rejected_total",
                                                             {"reason": "queue_full"})
                assert full == 2.0
        finally:
            await server.stop(0)
            fed.store.close()
        return accepted, refused

    accepted, refused = asyncio.run(scenario())
    assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue is full" in (refused.details() or "") and "retry after 2s" in (refused.details() or "")
    assert dict(refused.trailing_metadata() or ())["retry-after"] == "2"
    assert len(accepted) == 3
    reopened = SqliteJobStore(db)
    assert sorted(j.job_id for j in reopened.load()) == sorted(accepted)  # every accepted job, and no other
    reopened.close()


def test_concurrent_submits_share_one_commit_and_each_is_answered_after_it() -> None:
    class GatedStore(MemoryStore):
        """The first write waits for the test: every submit after it queues behind one busy disk."""

        def __init__(self) -> None:
            super().__init__()
            self.gate = threading.Event()
            self.first: list[int] = []  # the size of the write that holds the disk, once it is in put
            self.batches: list[int] = []

        def put(self, jobs: Any) -> None:
            jobs = list(jobs)
            if not self.first:
                self.first.append(len(jobs))
            self.gate.wait(A_WHILE)
            super().put(jobs)
            self.batches.append(len(jobs))

    async def scenario() -> None:
        store = GatedStore()
        fed = Federator(store=store)
        tasks = [asyncio.get_running_loop().create_task(fed.submit_async(spec(f"j-{i}", gpus=1)))
                 for i in range(50)]
        # The first write holds the disk (one job, or a few if the writer thread woke late); the rest wait
        # behind it. Waiting on the queue alone raced the writer: all 50 queued before it took any.
        while not store.first or fed.journal.queued + store.first[0] < 50:
            await asyncio.sleep(0.01)
        assert not any(t.done() for t in tasks)  # none acknowledged before its write
        assert fed.cycles.pending_count == 0  # and none is a scheduling candidate yet
        store.gate.set()
        jobs = await asyncio.gather(*tasks)
        # at most two transactions for fifty submissions: the one that held the disk, and all the rest
        assert store.batches == [store.first[0], 50 - store.first[0]][:1 if store.first[0] == 50 else 2]
        assert sorted(store.docs) == sorted(j.job_id for j in jobs)
        assert fed.cycles.pending_count == 50

    asyncio.run(scenario())


__all__ = ["H100"]


def test_a_job_waiting_for_its_workload_kind_comes_back_when_a_cluster_gains_the_kind() -> None:
    import json
    from dataclasses import replace as with_

    from workload_objects import fresh

    store, clock = MemoryStore(), Clock()
    fed = make(store, clock)
    rec = join(fed, "east-1")  # serves the built-in kinds only
    job = fed.submit(with_(spec("js", gpus=8), workload_json=json.dumps(fresh("JobSet"))))
    fed.schedule_once()
    reason = fed.jobs[job.job_id].pending_reason
    assert reason is not None and reason.code is ReasonCode.WORKLOAD_KIND_UNSUPPORTED
    assert job.job_id in fed.cycles.parked
    kinds = frozenset({"Job.batch", "JobSet.jobset.x-k8s.io"})
    fed.report(rec, with_(capacity(), workload_kinds=kinds))  # the JobSet controller was installed
    assert job.job_id not in fed.cycles.parked
    fed.schedule_once()
    assert fed.jobs[job.job_id].phase is JobPhase.PLACED
