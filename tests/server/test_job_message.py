"""A job's message is what its placements say now, and names a cluster of its that is not Ready.

A Running job does not keep the message it had while Placed; a job on a Partitioned cluster says which, since
when, and what happens next, until the cluster is Ready again (or Lost, when the job is placed again).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
import pytest
from server_support import LEASE, LOST_AFTER, Clock, MemoryStore, join, make, spec
from test_services_edge import channel, good_spec, hello, report, served

from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.jobfile import parse_job
from federator.model import ClusterState, Job, JobPhase, JobSpec, NeverRunnable, Reason, ReasonCode
from federator.server.federator import ClusterRecord, Federator
from federator.server.job_message import THEN, keep_interruption


def test_a_running_job_drops_the_message_it_had_while_placed() -> None:
    fed = make(MemoryStore(), Clock())
    rec = join(fed, "west-1")
    job = fed.submit(spec("train", gpus=8, replicas=2))
    fed.schedule_once()
    (p,) = job.placements
    fed.job_update(rec, p.placement_id, JobPhase.PLACED, "0 of 2 replicas running")
    assert (job.phase, job.message) == (JobPhase.PLACED, "0 of 2 replicas running")
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
    assert (job.phase, job.message) == (JobPhase.RUNNING, "")
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "2 of 2 replicas running")
    assert job.message == "2 of 2 replicas running"


# -- a job on a cluster that is not Ready says so (server/job_message.py) -----------------------------------------

def inference(name: str, *, replicas: int) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": "inference", "replicas": replicas,
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def partitioned(cluster: str, since: float, why: str = "no word from its agent") -> str:
    return (f"{cluster} Partitioned since {utc(since)} ({why}); waiting for it to come back, "
            f"or until it is Lost at {utc(since + LOST_AFTER)} ({LOST_AFTER:g} s on), when the job is placed again")


def running_on(fed: Federator, name: str, message: str = "") -> tuple[Job, ClusterRecord]:
    rec = join(fed, name)
    job = fed.submit(spec(f"train-{name}", replicas=4))  # a whole cluster (4 nodes of 8): the next goes elsewhere
    fed.schedule_once()
    (p,) = job.placements
    assert p.cluster == name
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, message)
    return job, rec


@pytest.mark.parametrize("silence", ["stream-dropped", "lease-ran-out"])
def test_a_job_on_a_partitioned_cluster_names_it_until_it_is_ready_again(silence: str) -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock)
    job, rec = running_on(fed, "west-1", "2 of 2 replicas running")
    seen = fed.history.revision
    clock.now += 1
    if silence == "stream-dropped":
        fed.disconnect(rec)
    else:
        clock.now += LEASE + 1  # connected, and silent past its lease
    fed.check_leases()
    since = clock.now
    assert rec.state is ClusterState.PARTITIONED and job.phase is JobPhase.RUNNING
    assert job.message == f"{partitioned('west-1', since)}; 2 of 2 replicas running"
    assert store.docs[job.job_id].message == job.message  # written, so Kubernetes status says it too
    assert [c.job_id for c in fed.history.after(seen)] == [job.job_id]  # watchers (get --watch, kubectl -w) hear of it
    seen = fed.history.revision

    clock.now += 30
    fed.check_leases()
    assert job.message.startswith(partitioned("west-1", since))  # no rewrite while nothing changed
    assert fed.history.after(seen) == []

    back = join(fed, "west-1", job.placements[0].placement_id)
    fed.check_leases()
    assert back.state is ClusterState.READY
    assert (job.phase, job.message) == (JobPhase.RUNNING, "2 of 2 replicas running")
    assert store.docs[job.job_id].message == "2 of 2 replicas running"


def test_an_update_from_a_partitioned_cluster_keeps_the_note() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    job, rec = running_on(fed, "west-1")
    clock.now += LEASE + 1
    fed.check_leases()
    fed.job_update(rec, job.placements[0].placement_id, JobPhase.RUNNING, "1 of 1 replica running")
    assert job.message == f"{partitioned('west-1', clock.now)}; 1 of 1 replica running"


def test_a_job_on_a_ready_cluster_says_nothing_of_another_that_is_partitioned() -> None:
    fed = make(MemoryStore(), Clock())
    quiet, east = running_on(fed, "east-1")
    busy, _ = running_on(fed, "west-1", "1 of 1 replica running")
    fed.disconnect(east)
    fed.check_leases()
    assert quiet.message.startswith("east-1 Partitioned since")
    assert busy.message == "1 of 1 replica running"


def test_an_inference_job_spread_over_clusters_names_the_partitioned_ones() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    recs = {name: join(fed, name) for name in ("a-1", "b-1", "c-1")}
    job = fed.submit(inference("serve", replicas=12))  # 4 nodes of 8 GPUs each: three clusters
    fed.schedule_once()
    assert sorted(p.cluster for p in job.placements) == ["a-1", "b-1", "c-1"]
    for p in job.placements:
        fed.job_update(recs[p.cluster], p.placement_id, JobPhase.RUNNING, "")
    fed.disconnect(recs["c-1"])
    fed.disconnect(recs["a-1"])
    fed.check_leases()
    assert job.message == f"{partitioned('a-1', clock.now)}; {partitioned('c-1', clock.now)}"
    assert "b-1" not in job.message


def test_a_job_that_stays_on_a_lost_cluster_says_it_waits_there() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    rec = join(fed, "west-1")
    job = fed.submit(spec("stay", **{"federator.io/failover": "keep"}))
    fed.schedule_once()
    fed.disconnect(rec)
    fed.check_leases()
    assert job.message.endswith("the job stays there even then (failover: keep)")
    clock.now += LOST_AFTER + 1
    fed.check_leases()
    assert rec.state is ClusterState.LOST and job.phase is JobPhase.PLACED
    assert job.message == f"west-1 Lost (no word from its agent since {utc(clock.now - LOST_AFTER - 1)}); " \
                          "the job waits for it to come back (failover: keep)"


def test_a_job_on_a_lost_cluster_is_placed_again_without_the_note() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    job, rec = running_on(fed, "west-1")
    fed.disconnect(rec)
    clock.now += LOST_AFTER + 1
    join(fed, "east-1")
    fed.check_leases()
    assert (job.phase, job.message) == (JobPhase.PENDING, "")
    assert job.pending_reason is not None and "west-1 was Lost" in job.pending_reason.message
    fed.schedule_once()
    assert [p.cluster for p in job.placements] == ["east-1"]
    assert "west-1" not in job.message and job.message.endswith("; not started yet")  # no note of the Lost one


def test_after_a_restart_a_job_names_the_cluster_expected_back() -> None:
    store, clock = MemoryStore(), Clock()
    job, _ = running_on(make(store, clock), "west-1", "1 of 1 replica running")
    clock.now += 5
    restarted = make(store, clock)
    restarted.check_leases()
    why = "its agent has not reported since this federator started"  # not that it fell silent at the restart
    assert restarted.jobs[job.job_id].message == f"{partitioned('west-1', clock.now, why)}; 1 of 1 replica running"
    clock.now += LOST_AFTER + 1
    restarted.check_leases()
    assert restarted.jobs[job.job_id].phase is JobPhase.PENDING  # Lost: placed again, the note gone with it


def test_a_restarted_federators_loop_restates_the_job_at_its_first_turn_not_an_interval_later() -> None:
    """Seen on a restart: Get said "1 replicas running" of a job whose cluster's agent was SIGSTOPped, until
    the loop's first turn, which came a whole cycle interval after the start."""
    store, clock = MemoryStore(), Clock()
    job, _ = running_on(make(store, clock), "west-1", "1 of 1 replica running")
    restarted = make(store, clock, cycle_interval=3600.0)
    assert restarted.jobs[job.job_id].message == "1 of 1 replica running"  # as stored, before any turn

    async def scenario() -> str:
        runner = asyncio.get_running_loop().create_task(restarted.run())
        try:
            for _ in range(100):  # a few turns of the event loop; nowhere near the hour-long interval
                await asyncio.sleep(0)
            return restarted.jobs[job.job_id].message
        finally:
            runner.cancel()

    why = "its agent has not reported since this federator started"
    assert asyncio.run(scenario()) == f"{partitioned('west-1', clock.now, why)}; 1 of 1 replica running"


def test_a_restart_that_finds_a_cluster_lost_keeps_a_job_that_stays_saying_so() -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock)
    rec = join(fed, "west-1")
    job = fed.submit(spec("stay", **{"federator.io/failover": "keep"}))
    fed.schedule_once()
    fed.disconnect(rec)
    clock.now += 5
    restarted = make(store, clock)
    started = clock.now
    clock.now += LOST_AFTER + 1
    restarted.check_leases()
    assert restarted.clusters["west-1"].state is ClusterState.LOST
    assert restarted.jobs[job.job_id].message == \
        f"west-1 Lost (its agent has not reported since this federator started at {utc(started)}); " \
        "the job waits for it to come back (failover: keep)"


def test_over_the_wire_get_and_list_name_the_partitioned_cluster_until_its_agent_is_back() -> None:
    """The user's view (`federator get`/`list` read Get and List) over a real socket: an agent whose stream drops
    while its job is Placed (the empty message users saw), then the agent back with the placement."""
    async def go() -> None:
        async with served() as s, channel(s.target) as ch:
            jobs = jobs_pb2_grpc.JobServiceStub(ch)
            connect = ch.stream_stream("/federator.v1.AgentService/Connect",
                                       request_serializer=agent_pb2.AgentMessage.SerializeToString,
                                       response_deserializer=agent_pb2.FederatorMessage.FromString)

            async def agent(*first: agent_pb2.AgentMessage) -> tuple[grpc.aio.StreamStreamCall, asyncio.Event]:
                done = asyncio.Event()

                async def requests() -> AsyncIterator[agent_pb2.AgentMessage]:
                    for m in first:
                        yield m
                    await done.wait()

                call = connect(requests())
                assert (await call.read()).WhichOneof("body") == "welcome"
                await eventually_async(lambda: s.fed.clusters["east-1"].state is ClusterState.READY)
                return call, done

            call, done = await agent(hello(), roomy())
            job_id = (await jobs.Submit(good_spec("train"), timeout=5)).job.job_id
            s.fed.schedule_once()
            while (await asyncio.wait_for(call.read(), 5)).WhichOneof("body") != "launch":
                pass  # heartbeats
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
            assert got.phase == types_pb2.JOB_PHASE_PLACED
            assert got.message.startswith("placed on east-1 at ") and got.message.endswith("; not started yet")

            call.cancel()  # the stream drops
            await eventually_async(lambda: not s.fed.clusters["east-1"].connected)
            s.fed.check_leases()
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
            assert got.phase == types_pb2.JOB_PHASE_PLACED
            assert got.message.startswith("east-1 Partitioned since "), got.message
            assert "(120 s on), when the job is placed again" in got.message, got.message  # the default grace
            (listed,) = (await jobs.List(jobs_pb2.ListJobsRequest(), timeout=5)).jobs
            assert listed.message == got.message

            (pid,) = [p.placement_id for p in got.placements]
            back = roomy()
            back.capacity.placement_ids.append(pid)  # the agent still holds the placement
            again, done_again = await agent(hello(), back)
            s.fed.check_leases()
            got = await jobs.Get(jobs_pb2.GetJobRequest(job_id=job_id), timeout=5)
            assert (got.phase, got.placements[0].placement_id) == (types_pb2.JOB_PHASE_PLACED, pid)
            assert got.message.startswith("placed on east-1 at ") and got.message.endswith("; not started yet")
            done.set()
            done_again.set()
            again.cancel()

    asyncio.run(go())


def roomy() -> agent_pb2.AgentMessage:
    """A report with room for one CPU job (test_services_edge's `report` has no node to put it on)."""
    msg = report()
    msg.capacity.node_cpu_milli_free_max = 1000
    msg.capacity.memory_bytes_allocatable = msg.capacity.memory_bytes_free = 2**30
    msg.capacity.node_memory_bytes_free_max = 2**30
    return msg


async def eventually_async(ok: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not ok():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_cluster_partitioned_and_back_within_one_turn_leaves_no_stale_note() -> None:
    """Chaos QA F4: the federator SIGSTOPped 30 s; on resume west-1 went Partitioned and, 17 ms later, Ready again,
    within one turn of the loop. The re-sync's updates, read while it was Partitioned, wrote the note into its jobs'
    messages, and the turn saw Ready before and after: the note stayed for a minute, its Lost time long past."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    job, rec = running_on(fed, "west-1", "1 of 2 replicas running")
    fed.check_leases()  # a turn: west-1 Ready, noted so
    clock.now += 1
    fed.disconnect(rec)  # no turn between this and the first report of the new stream
    back = fed.connect(cluster="west-1", region="r", labels={})
    fed.job_update(back, job.placements[0].placement_id, JobPhase.RUNNING, "2 of 2 replicas running")  # re-sync
    assert "Partitioned since" in job.message
    join(fed, "west-1", job.placements[0].placement_id)  # its first report: Ready
    fed.check_leases()  # the next turn
    assert fed.clusters["west-1"].state is ClusterState.READY
    assert job.message == "2 of 2 replicas running"


WAIT = Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "0/3 clusters fit: east-1 has no node with 8 free H100 "
              "accelerators", never=NeverRunnable.FLEET)


@pytest.mark.parametrize(("old", "code", "lead"), [
    pytest.param(Reason(ReasonCode.PREEMPTED, "preempted on west-1 for a job of another queue (priority 1000), at "
                        "2026-12-06T14:35:26Z"), ReasonCode.PREEMPTED,
                 "preempted on west-1 for a job of another queue (priority 1000), at 2026-12-06T14:35:26Z",
                 id="preempted"),
    pytest.param(Reason(ReasonCode.FAILED_EARLY, "failed on west-1 after 3s: exit code 1; placing it once more"),
                 ReasonCode.FAILED_EARLY, "failed on west-1 after 3s: exit code 1; placing it once more",
                 id="failed-early"),
    pytest.param(Reason(ReasonCode.DRAINED, "cluster a drained by admin: hardware swap"), ReasonCode.DRAINED,
                 "cluster a drained by admin: hardware swap", id="drained"),
    pytest.param(Reason(ReasonCode.PREEMPTED, "preempted on c for x, at T; then: QuotaExceeded: queue q is full"),
                 ReasonCode.PREEMPTED, "preempted on c for x, at T", id="the-last-wait-replaced"),
    # what 0.12.0 stored for a job preempted (or drained) before the upgrade and still waiting
    pytest.param(Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "0/1 clusters fit: ... (preempted at "
                        "2026-12-06T14:35:26Z for a job of another queue)"), ReasonCode.PREEMPTED,
                 "preempted at 2026-12-06T14:35:26Z for a job of another queue", id="a-0.12.0-note"),
    pytest.param(Reason(ReasonCode.GANG_DOES_NOT_FIT, "0/1 clusters fit: ... (drained: cluster a drained by bob)"),
                 ReasonCode.DRAINED, "cluster a drained by bob", id="a-0.12.0-drained-note"),
])
def test_an_interrupted_job_keeps_its_code_and_says_it_first_until_placed(old: Reason, code: ReasonCode,
                                                                          lead: str) -> None:
    """Outside HPC QA, H13 and H6: the next cycle gave a preempted (or early-failed) job its wait's code, and the
    note ended the message, past what `get jobs`' REASON column shows; a script filtering `Preempted` found
    nothing. The interruption's code stays, its words lead, and the wait follows with its own code."""
    kept = keep_interruption(old, WAIT)
    assert kept == Reason(code, f"{lead}{THEN}{WAIT}", never=NeverRunnable.FLEET)
    assert str(kept)[:100].startswith(f"{code}: {lead}"[:100])  # what a cut REASON column shows


@pytest.mark.parametrize("old", [None, Reason(ReasonCode.INSUFFICIENT_ACCELERATORS, "0/1 clusters fit: busy"),
                                 Reason(ReasonCode.QUOTA_EXCEEDED, "queue q is at its quota (of 16 H100)")])
def test_a_wait_with_no_interruption_before_it_is_shown_as_it_is(old: Reason | None) -> None:
    assert keep_interruption(old, WAIT) is WAIT


def test_a_new_interruption_replaces_the_last() -> None:
    again = Reason(ReasonCode.DRAINED, "cluster b drained by admin")
    assert keep_interruption(Reason(ReasonCode.PREEMPTED, f"preempted on c, at T{THEN}{WAIT}"), again) is again


def test_a_restart_restates_no_job_while_it_waits_for_the_cluster_expected_back_only_after() -> None:
    """QA kubescaleqa62 H1: at its first turn a restarted federator restated every job on a cluster whose agent had
    not reported yet ("Partitioned since ..."), then again a few seconds later when the agent was back: two store
    writes per running job for nothing, in Kubernetes mode two status PATCHes per FederatedJob on every failover.
    While the start waits for the clusters expected back (--settle-seconds) the message stays as stored; once the
    wait is over one still away is named."""
    store, clock = MemoryStore(), Clock()
    job, _ = running_on(make(store, clock), "west-1", "1 of 1 replica running")
    restarted = make(store, clock, settle_seconds=10.0)
    restarted.check_leases()
    assert restarted.jobs[job.job_id].message == "1 of 1 replica running"  # as stored: nothing to write
    join(restarted, "west-1", *(p.placement_id for p in restarted.jobs[job.job_id].placements))
    restarted.check_leases()
    assert restarted.jobs[job.job_id].message == "1 of 1 replica running"  # back within the wait: never restated

    again = make(store, clock, settle_seconds=10.0)  # a restart whose cluster does not come back
    again.check_leases()
    assert again.jobs[job.job_id].message == "1 of 1 replica running"
    clock.now += 11
    assert not again.settling.holding(clock.now, lambda: ["west-1"])  # the wait is over
    again.check_leases()
    said = again.jobs[job.job_id].message
    assert said.startswith("west-1 Partitioned since ") and "has not reported since this federator started" in said
