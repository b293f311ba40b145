"""An agent's JobUpdate is written off the event loop: a busy disk never holds the calls of other users and agents.

Before, the update was written with `GroupCommit.write` on the loop, which waited for the fsync: with three agents
2.3 s of the loop's 19.5 s went to that (docs/benchmarks.md, 6 Dec). Here a store whose write the test holds stands
for a slow disk; what is checked is *order* over real gRPC on loopback: a List is answered while the update's write
is still held, the update is announced to Watch only once stored, and one job's updates reach the store in the
order the agent sent them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable

from agent_stream import agent_stream
from server_support import MemoryStore, capacity, job_api, spec

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2
from federator.model import Job, JobPhase
from federator.server.federator import Federator

A_WHILE = 20.0  # a guard against a hang (the old code held the loop until this ran out): no assertion reads time


class HeldStore(MemoryStore):
    """A store whose writes, once `hold` is set, wait until the test sets `release` (a disk busy with an fsync).

    `events` is the order of what happened: the write held, answers the test saw, the write let go (or
    "timed out", when nothing released it in A_WHILE: the loop was held, and the test could not)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.events: list[str] = []
        self.phases: list[JobPhase] = []  # the phase of each write of the job, in the order written

    def put(self, jobs: Iterable[Job]) -> None:
        jobs = list(jobs)
        if self.hold:
            self.hold = False
            self.events.append("write held")
            self.entered.set()
            self.events.append("write let go" if self.release.wait(A_WHILE) else "write timed out")
        self.phases.extend(j.phase for j in jobs)
        super().put(jobs)


def test_a_list_is_answered_while_an_agents_update_waits_for_the_disk_and_its_updates_keep_their_order() -> None:
    async def scenario() -> None:
        store = HeldStore()
        fed = Federator(store=store, lease_seconds=10.0, cycle_interval=0.05)
        job = fed.submit(spec("a", gpus=8))
        async with job_api(fed) as jobs, agent_stream(fed) as agent:
            try:
                await agent.send(agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity())))
                launch = await agent.read()
                assert launch.WhichOneof("body") == "launch"
                pid = launch.launch.placement.placement_id
                fed.journal.drain()  # the placement is stored: the next write is the update's
                store.phases.clear()
                revision = fed.history.revision

                store.hold = True
                await agent.send(agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=pid, ok=True)))
                await agent.send(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                    placement_id=pid, phase=convert.phase_to_pb(JobPhase.RUNNING), message="running")))
                assert await asyncio.to_thread(store.entered.wait, A_WHILE)  # the update's write holds the disk
                # Sent only now: sent at once, the writer (woken, not started, since it is one thread) could find
                # both updates queued and write only the newest, correctly, and this test would not see the order
                await agent.send(agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(
                    placement_id=pid, phase=convert.phase_to_pb(JobPhase.SUCCEEDED), message="done")))
                listed = await jobs.List(jobs_pb2.ListJobsRequest(), timeout=A_WHILE)
                store.events.append("List answered")
                while job.phase is not JobPhase.SUCCEEDED:  # the second update is read while the first is held
                    await asyncio.sleep(0.01)
                announced_while_held = fed.history.revision != revision
                store.release.set()
                await asyncio.to_thread(fed.journal.drain)
                assert store.events == ["write held", "List answered", "write let go"], store.events
                assert [j.job_id for j in listed.jobs] == [job.job_id]
                assert not announced_while_held, "the update was announced to Watch before it was stored"
                while fed.history.revision == revision:  # announced once stored (the loop runs `then`)
                    await asyncio.sleep(0.01)
                assert store.phases == [JobPhase.RUNNING, JobPhase.SUCCEEDED]  # in the agent's order
                assert store.docs[job.job_id].phase is JobPhase.SUCCEEDED
            finally:
                store.release.set()  # before the stream's teardown, which waits for the loop's work

    asyncio.run(scenario())
