"""A job is billed to when its workload ended, not to when its agent noticed the end, over a real socket.

Outside billing QA F9: a job that ended while its agent was paused (SIGSTOP, a suspended VM, a long GC) was billed
to the agent's resume (181.1 accelerator-seconds for a 120 accelerator-second job): the agent dated the end when its
callback ran. Here the simulated member tells the agent of the end HOLD seconds late (as a paused agent, or a
member API slow to tell it, would see it); the agent says the workload's end (the simulated run's scheduled end,
converted to its clock and then to the federator's: agent/ended.py), and the job's finished_at and usage record
end there, within a second, not HOLD seconds later.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from test_end_time_grpc import FLEET, metered_member, training, until
from test_services_edge import run

from federator.agent.backend import UpdateCallback
from federator.backends.sim.runtime import SimBackend
from federator.model import JobPhase

HOLD = 3.0
"""How late the agent learns of the end: the bill must not grow by it."""


class LateToTell(SimBackend):
    """A simulated member whose final phases reach the agent HOLD seconds after the workload ended."""

    ended_at: dict[str, float]  # the workloads' ends as the member says them (a pod's finishedAt), by placement

    async def start(self, on_update: UpdateCallback) -> None:
        loop = asyncio.get_running_loop()
        self.ended_at = {}

        def late(placement_id: str, phase: JobPhase, message: str, **said: object) -> None:
            if phase.is_terminal:
                if said.get("ended_at") is not None:
                    self.ended_at[placement_id] = float(said["ended_at"])  # type: ignore[arg-type]
                loop.call_later(HOLD, lambda: on_update(placement_id, phase, message, **said))  # type: ignore[arg-type]
            else:
                on_update(placement_id, phase, message, **said)  # type: ignore[arg-type]

        await super().start(late)


def test_a_job_whose_end_the_agent_learns_late_is_billed_to_the_workloads_end(tmp_path: Path) -> None:
    async def go() -> None:
        backend = LateToTell(FLEET["east-1"])
        async with metered_member(tmp_path, backend, "east-1") as m:
            job = m.fed.submit(training(2))
            m.fed.schedule_once()
            await until(lambda: job.phase is JobPhase.RUNNING)
            (placed,) = job.placements
            await until(lambda: backend.placements().get(placed.placement_id) is JobPhase.SUCCEEDED)
            seen = time.time()  # a poll after the workload's end: on a loaded machine, more than a second after
            ended = backend.ended_at[placed.placement_id]  # the workload's end itself, not when a poll saw it
            await until(lambda: job.phase is JobPhase.SUCCEEDED)
            learned = time.time()
            assert learned - ended >= HOLD - 0.1  # the federator heard of it HOLD seconds late
            # Billed to the workload's end (the same clock here: one host), within a second; not HOLD later.
            assert ended - 1.0 <= job.finished_at <= seen + 0.1, (job.finished_at - ended)
            assert job.finished_at - job.started_at < 2.0 + 0.5, job.finished_at - job.started_at
            (record,) = m.usage.query(since=0.0, until=learned + 1)
            assert record.end == job.finished_at

    run(go)
