"""A job that ends while its agent is cut off is billed to its end, not to the agent's return, over a real socket.

Outside SRE QA F1 (second half): jobs that finished on a member while the federator was away were heard of only at
the agent's re-sync, and their finishedAt, run time and usage record ran to that re-sync (280 accelerator-seconds
of work billed as 3,668.9). Here a real agent with the simulated backend talks to an in-process federator through a
TCP relay that the test cuts: the job ends while the relay is cut, the agent comes back a few seconds later, and
the job's finished_at and its usage record end when the job ended (JobUpdate.ended_at), not at the reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from test_services_edge import run, served

from federator.accounting.meter import UsageMeter, attach
from federator.accounting.store import SqliteUsageStore
from federator.agent.agent import Agent, AgentConfig
from federator.backends.sim.fleet import parse_fleet
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec, run_seconds
from federator.server.federator import Federator

FLEET = parse_fleet({"clusters": [{"name": "east-1", "region": "east", "nodes": [
    {"count": 1, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})
CUT_SECONDS = 3.0
"""How long the agent stays cut off after the job ended: the bill must not grow by it."""


def training(seconds: int) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": "short", "annotations": {"federator.io/sim-startup": "0s",
                                                                    "federator.io/sim-duration": f"{seconds}s"}},
                      "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 8}}})


async def until(cond: Callable[[], object], timeout: float = 20.0) -> None:
    async def wait() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


class Relay:
    """A TCP relay between the agent and the federator that the test can cut: while cut, every connection through
    it is closed and new ones are closed as they come (the agent's stream ends, its reconnects fail)."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.port = int(port)
        self.cut = False
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def sever(self) -> None:
        self.cut = True
        for w in list(self._links):
            w.close()

    async def stop(self) -> None:
        self.sever()
        if self._server is not None:
            self._server.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self._links.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            for w in (writer, up_writer):
                w.close()
                self._links.discard(w)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@dataclass(frozen=True)
class Metered:
    """A federator served over loopback with its usage meter, and a real agent of one simulated member on it."""

    fed: Federator
    usage: SqliteUsageStore
    relay: Relay | None
    """The relay the agent talks through, that the test can cut (`relayed=True`); else None."""


@asynccontextmanager
async def metered_member(tmp_path: Path, backend: SimBackend, cluster: str, *,
                         relayed: bool = False) -> AsyncIterator[Metered]:
    """The harness of the usage-over-the-wire tests (this module's, test_end_time_workload_grpc.py's and
    test_shared_pool_usage_grpc.py's): yields once the member's agent has re-synced; stops the agent, the relay
    and the backend and closes the usage store after, whatever the test did."""
    async with served() as s:
        fed = s.fed
        usage = SqliteUsageStore(tmp_path / "usage.db")
        attach(fed, UsageMeter(usage, metrics=fed.metrics, clock=fed.clock))
        relay = Relay(s.target) if relayed else None
        target = await relay.start() if relay is not None else s.target
        agent = Agent(AgentConfig(cluster=cluster, region="east", target=target, max_backoff=0.2), backend)
        task = asyncio.create_task(agent.run())
        try:
            await until(lambda: (rec := fed.clusters.get(cluster)) is not None and rec.resynced)
            yield Metered(fed, usage, relay)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if relay is not None:
                await relay.stop()
            await backend.stop()
            usage.close()


def test_a_job_that_ends_while_its_agent_is_cut_off_is_billed_to_its_end(tmp_path: Path) -> None:
    async def go() -> None:
        backend = SimBackend(FLEET["east-1"])
        async with metered_member(tmp_path, backend, "east-1", relayed=True) as m:
            fed, relay = m.fed, m.relay
            assert relay is not None
            job = fed.submit(training(2))
            fed.schedule_once()
            await until(lambda: job.phase is JobPhase.RUNNING)
            (placed,) = job.placements
            relay.sever()  # cut off while it runs: the member runs it to its end all the same
            await until(lambda: backend.placements().get(placed.placement_id) is JobPhase.SUCCEEDED)
            ended = time.time()  # seen a poll after the member's end at most
            await asyncio.sleep(CUT_SECONDS)
            assert job.phase is JobPhase.RUNNING  # the federator has not heard of the end yet
            relay.cut = False
            await until(lambda: job.phase is JobPhase.SUCCEEDED)
            learned = time.time()
            assert learned - ended >= CUT_SECONDS
            # Its end as the agent estimated it on the federator's clock: before the poll that saw it, give or
            # take the transit of one message; not the reconnect, CUT_SECONDS later.
            assert job.finished_at <= ended + 0.5, (job.finished_at - ended)
            assert job.finished_at >= job.started_at
            assert run_seconds(job, learned) < 2.0 + 1.5, run_seconds(job, learned)
            (record,) = m.usage.query(since=0.0, until=learned + 1)
            assert record.end == job.finished_at
            assert record.micro_seconds(since=0.0, until=learned + 1, now=learned) < 8 * 3.5 * 1e6

    run(go)
