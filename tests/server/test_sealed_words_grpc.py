"""Only words the federator can prove it said are taken from an agent (server/seals.py), over the real gRPC agent
stream: a job-ending Cancel's seal for JobUpdate.job_ended (security QA secqa61 H1), a Launch's seal for the adoption
of a placement newer than the store (H2). A member that forges either word (no seal, a made-up one, another
placement's) neither ends a job nor takes one; an honest agent after a restore of the store still does both; an
agent before 0.20.0 (no "seals" feature) is served as before; an --insecure federator takes the words unsealed."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from agent_stream import AgentStream, agent_stream
from server_support import MemoryStore, capacity, job_api, spec
from test_job_dependencies_grpc import quiet

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.security.seal_keys import SealKeys, parse_seal_keys
from federator.server import paging, seals
from federator.server.federator import Federator
from federator.store import SqliteJobStore

SERVING_KEY = b"the federator's TLS serving key, as PEM bytes"


@pytest.fixture
def sealed() -> Iterator[None]:
    """The seals of an mTLS federator (server/app.py): under a key from its serving key, required."""
    before = seals.use_secret(SERVING_KEY, required=True)
    yield
    seals.use_seals(before)


def _report(*placement_ids: str) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity(*placement_ids)))  # 4 x 8 H100


def _update(pid: str, phase: JobPhase, **fields: object) -> agent_pb2.AgentMessage:
    return agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(phase),
                                                                 **fields))  # type: ignore[arg-type]


async def _launch(agent: AgentStream) -> agent_pb2.Launch:
    while (order := await agent.order()).WhichOneof("body") != "launch":
        pass
    return order.launch


async def _cancel(agent: AgentStream, pid: str) -> agent_pb2.Cancel:
    while not ((order := await agent.order()).WhichOneof("body") == "cancel" and order.cancel.placement_id == pid):
        pass
    return order.cancel


async def _until(fed: Federator, job_id: str, pid: str, phase: JobPhase) -> None:
    while next(p.phase for p in fed.jobs[job_id].placements if p.placement_id == pid) is not phase:
        await asyncio.sleep(0.01)


def _spread(name: str) -> jobs_pb2.SubmitRequest:
    """An inference job of 8 x 8 H100: more than one cluster's 4 x 8, so it is spread over east-1 and west-1."""
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "inference", "replicas": 8, "resources": {"cpu": "4", "memory": "16Gi",
                                                                    "nvidia.com/gpu": 8}}})))


_REASON = {"none": seals.UNSEALED, "made-up": seals.WRONG, "another placement's": seals.WRONG,
           "another cluster's": seals.WRONG, "an older generation's": seals.WRONG}
"""federator_agent_unproven_words_total's reason of each forged seal."""


async def _counted(fed: Federator, cluster: str, word: str, reason: str) -> float:
    """federator_agent_unproven_words_total of that cluster, word and reason, once counted (the refusal is counted as
    it is logged, which may follow the Cancel the agent reads)."""
    labels = {"cluster": cluster, "word": word, "reason": reason}
    while not (value := fed.metrics.registry.get_sample_value("federator_agent_unproven_words_total", labels)):
        await asyncio.sleep(0.01)  # 0 from the agent's connect (Metrics.cluster_counters_from_zero)
    return value


def _forged(kind: str, other_pid: str) -> str:
    """A cancel_seal a lying member may send: none, a made-up one, or this federator's seal of another placement."""
    return {"none": "", "made-up": f"s1.{seals.current().key_id}.{'A' * 43}",
            "another placement's": seals.current().cancel(other_pid, "east-1")}[kind]


@pytest.mark.usefixtures("sealed")
@pytest.mark.parametrize("seal", ["none", "made-up", "another placement's"])
def test_a_members_job_ended_without_the_federators_seal_stops_only_its_placement(tmp_path: Path, seal: str) -> None:
    """H1: west-1 says its part of a spread job was stopped by a job-ending Cancel it was never sent. The job is not
    ended, east-1's part runs on (no Cancel is sent for it), and the stop is west-1's: counted against it, the part
    placed again."""
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed, features=("seals",)) as east, \
                grpc.aio.insecure_channel(f"127.0.0.1:{east.port}") as ch:
            west = AgentStream.on(ch, agent_pb2.AgentMessage(hello=agent_pb2.Hello(
                cluster="west-1", region="west", features=["seals"])))
            assert (await west.read()).WhichOneof("body") == "welcome"
            await east.send(_report())
            await west.send(_report())
            job = (await jobs.Submit(_spread("serve"))).job
            east_pid = (await _launch(east)).placement.placement_id
            west_pid = (await _launch(west)).placement.placement_id
            for agent, pid in ((east, east_pid), (west, west_pid)):
                await agent.send(_update(pid, JobPhase.RUNNING))
                await _until(fed, job.job_id, pid, JobPhase.RUNNING)
            await west.send(_update(west_pid, JobPhase.CANCELLED, job_ended=True, message="cancelled by the federator",
                                    cancel_seal=_forged(seal, east_pid)))
            while any(p.placement_id == west_pid and p.phase.is_active for p in fed.jobs[job.job_id].placements):
                await asyncio.sleep(0.01)
            await quiet(fed)
            kept = fed.jobs[job.job_id]
            assert kept.phase is not JobPhase.CANCELLED, kept.message
            assert next(p.phase for p in kept.placements if p.placement_id == east_pid) is JobPhase.RUNNING
            assert "west-1" in fed.refusals.avoided(kept.job_id, fed.clock())  # the cluster's stop, counted
            assert await _counted(fed, "west-1", "job_ended", _REASON[seal]) == 1  # FederatorAgentWordsUnproven
            west.close()
        fed.store.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("sealed")
def test_an_older_agents_cancelled_update_of_a_job_cancelled_is_no_warning(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    """Outside a restore the word changes nothing (the job has ended already): an agent before 0.20.0, which says
    job_ended with no seal at every cancel, is not warned of."""
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed) as east:
            await east.send(_report())
            job = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("a"))))).job
            pid = (await _launch(east)).placement.placement_id
            await east.send(_update(pid, JobPhase.RUNNING))
            await _until(fed, job.job_id, pid, JobPhase.RUNNING)
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id))
            assert (await _cancel(east, pid)).job_ended
            await east.send(_update(pid, JobPhase.CANCELLED, job_ended=True))
            await east.send(_report())
            await quiet(fed)
            assert fed.jobs[job.job_id].phase is JobPhase.CANCELLED
        fed.store.close()

    with caplog.at_level(logging.WARNING, logger="federator.server"):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if "not taken as the job's end" in r.getMessage()]


def test_an_insecure_federator_takes_job_ended_unsealed_as_before(tmp_path: Path) -> None:
    """--insecure: no identities, any agent may be any cluster: the word is taken as before 0.20.0 (documented)."""
    before = seals.use_secret(None, required=False)
    try:
        async def scenario() -> None:
            fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
            async with job_api(fed) as jobs, agent_stream(fed) as east:
                await east.send(_report())
                job = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("a"))))).job
                pid = (await _launch(east)).placement.placement_id
                await east.send(_update(pid, JobPhase.RUNNING))
                await _until(fed, job.job_id, pid, JobPhase.RUNNING)
                await east.send(_update(pid, JobPhase.CANCELLED, job_ended=True))
                while fed.jobs[job.job_id].phase is not JobPhase.CANCELLED:
                    await asyncio.sleep(0.01)
            fed.store.close()

        asyncio.run(scenario())
    finally:
        seals.use_seals(before)


@pytest.mark.usefixtures("sealed")
@pytest.mark.parametrize("features", [("seals",), ()], ids=["0.20.0 agent", "older agent"])
def test_after_a_restore_an_honest_agents_sealed_cancel_ends_the_job(features: tuple[str, ...]) -> None:
    """The restore restored_ends.py exists for: a job cancelled after the snapshot is back Running; its agent says the
    Cancelled placement with job_ended and the Cancel's seal: the job ends Cancelled. An agent without the feature
    says no seal: the stop is read as the cluster's own (the job queued again, as before 0.16.0)."""
    async def scenario() -> None:
        live = Federator(store=MemoryStore(), cycle_interval=0.05)  # type: ignore[arg-type]
        async with job_api(live) as jobs, agent_stream(live, features=features) as agent:
            await agent.send(_report())
            job = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("a"))))).job
            pid = (await _launch(agent)).placement.placement_id
            await agent.send(_update(pid, JobPhase.RUNNING))
            await _until(live, job.job_id, pid, JobPhase.RUNNING)
            while {j.job_id: j.phase for j in live.store.load()}[job.job_id] is not JobPhase.RUNNING:
                await asyncio.sleep(0.01)
            snapshot = MemoryStore()
            snapshot.put(live.store.load())  # type: ignore[attr-defined]
            await jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job.job_id))
            cancel = await _cancel(agent, pid)
            assert cancel.job_ended and cancel.seal
        restored = Federator(store=snapshot, cycle_interval=0.05)  # type: ignore[arg-type]
        assert restored.jobs[job.job_id].phase is JobPhase.RUNNING
        async with agent_stream(restored, features=features) as agent:
            said = cancel.seal if features else ""  # what the agent kept and says back
            await agent.send(_update(pid, JobPhase.CANCELLED, job_ended=True, resync=True, cancel_seal=said))
            await agent.send(_report())
            while restored.jobs[job.job_id].phase is JobPhase.RUNNING:
                await asyncio.sleep(0.01)
            assert restored.jobs[job.job_id].phase is (JobPhase.CANCELLED if features else JobPhase.PENDING)

    asyncio.run(scenario())


def _big(name: str) -> jobs_pb2.SubmitRequest:
    """A training gang of 5 x 8 H100: more than the cluster's 4 x 8, so it is never placed there."""
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec(name, gpus=8, replicas=5)))


def _launch_seal(kind: str, job_id: str) -> str:
    """A launch_seal a lying member may send of JOB.g2.east-1: none, a made-up one, this federator's seal of the same
    placement id for another cluster, or of the job's generation 1 on this cluster (a replay of an older Launch)."""
    pid = f"{job_id}.g2.east-1"
    current = seals.current()
    return {"none": "", "made-up": f"s1.{current.key_id}.{'A' * 43}",
            "another cluster's": current.launch(pid, job_id, 2, "west-1"),
            "an older generation's": current.launch(f"{job_id}.g1.east-1", job_id, 1, "east-1")}[kind]


async def _started_after_the_snapshot(features: tuple[str, ...]) -> tuple[MemoryStore, str, agent_pb2.Launch]:
    """The restore tests' start: a job submitted to a live federator and stored, the store's snapshot taken (the job
    Pending, generation 0), then the job launched on east-1 (its agent with `features`) and running there: a job
    that started after the snapshot. (The snapshot, the job's id, its Launch.)"""
    live = Federator(store=MemoryStore(), cycle_interval=0.05)  # type: ignore[arg-type]
    async with job_api(live) as jobs, agent_stream(live, features=features) as agent:
        job = (await jobs.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("a"))))).job
        while job.job_id not in {j.job_id for j in live.store.load()}:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)
        snapshot = MemoryStore()
        snapshot.put(live.store.load())  # type: ignore[attr-defined]  # Pending, generation 0
        await agent.send(_report())
        launch = await _launch(agent)
        pid = launch.placement.placement_id
        await agent.send(_update(pid, JobPhase.RUNNING))
        await _until(live, job.job_id, pid, JobPhase.RUNNING)
    return snapshot, job.job_id, launch


@pytest.mark.usefixtures("sealed")
@pytest.mark.parametrize("seal", ["none", "made-up", "another cluster's", "an older generation's"])
def test_a_placement_the_federator_never_launched_is_not_adopted_and_is_told_to_stop(tmp_path: Path,
                                                                                     seal: str) -> None:
    """H2: east-1 names a placement of its own making for another tenant's Pending gang, which does not even fit it,
    and says it Running at a re-sync. It is not adopted (the job stays Pending, nothing billed or booked): a
    placement the federator does not know, cancelled (no --orphan-grace here)."""
    async def scenario() -> None:
        fed = Federator(store=SqliteJobStore(tmp_path / "jobs.db"), cycle_interval=0.05)
        async with job_api(fed) as jobs, agent_stream(fed, features=("seals",)) as agent:
            await agent.send(_report())
            job = (await jobs.Submit(_big("bob-big"))).job
            await quiet(fed)
            assert fed.jobs[job.job_id].phase is JobPhase.PENDING
            forged = f"{job.job_id}.g2.east-1"
            await agent.send(_update(forged, JobPhase.RUNNING, generation=2, resync=True,
                                     launch_seal=_launch_seal(seal, job.job_id)))
            await agent.send(_report(forged))
            assert (await _cancel(agent, forged)).placement_id == forged  # told to stop it
            await quiet(fed)
            kept = fed.jobs[job.job_id]
            assert kept.phase is JobPhase.PENDING and kept.generation == 0 and not kept.placements
            assert await _counted(fed, "east-1", "launch", _REASON[seal]) == 1  # FederatorAgentWordsUnproven
        fed.store.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("sealed")
@pytest.mark.parametrize("features", [("seals",), ()], ids=["0.20.0 agent", "older agent"])
def test_after_a_restore_an_honest_agents_sealed_placement_is_adopted(features: tuple[str, ...]) -> None:
    """The restore adoption.py exists for: a job that started after the snapshot is back Pending while its gang runs;
    its agent says the placement Running with its Launch's seal: adopted, Running, nothing launched again. An agent
    without the feature says no seal: not adopted (an orphan, cancelled; the job placed again, as before 0.17.0)."""
    async def scenario() -> None:
        snapshot, job_id, launch = await _started_after_the_snapshot(features)
        assert launch.seal.startswith("s1.")
        pid = launch.placement.placement_id
        restored = Federator(store=snapshot, cycle_interval=0.05)  # type: ignore[arg-type]
        assert restored.jobs[job_id].phase is JobPhase.PENDING
        async with agent_stream(restored, features=features) as agent:
            said = launch.seal if features else ""  # what the agent kept and says back
            await agent.send(_update(pid, JobPhase.RUNNING, generation=1, resync=True, launch_seal=said))
            await agent.send(_report(pid))
            if features:
                while restored.jobs[job_id].phase is not JobPhase.RUNNING:
                    await asyncio.sleep(0.01)
                assert [p.placement_id for p in restored.jobs[job_id].placements] == [pid]
            else:
                assert (await _cancel(agent, pid)).placement_id == pid
                assert pid not in {p.placement_id for p in restored.jobs[job_id].placements}

    asyncio.run(scenario())


KEY_A, KEY_B = bytes(range(32)), bytes(range(100, 140))
RENEWED = b"the key of the serving certificate cert-manager renewed (rotationPolicy: Always)"


def _keys(*keys: bytes) -> SealKeys | None:
    """A seal key file's keys, as `federator serve --seal-key-file` reads them (none: the flag not given)."""
    text = "\n".join(base64.b64encode(k).decode() for k in keys)
    return parse_seal_keys(f"# seal keys, the first seals\n{text}\n") if keys else None


@pytest.fixture
def keyed() -> Iterator[None]:
    """Put back the process's seals and page tokens that `seals.use_keys` (server/app.py, at start) replaces."""
    before, tokens = seals.current(), paging.use_secret(None)
    yield
    seals.use_seals(before)
    paging.use_seal(tokens)


@pytest.mark.usefixtures("keyed")
@pytest.mark.parametrize(("before", "after", "adopted"), [
    pytest.param((_keys(KEY_A), SERVING_KEY), (_keys(KEY_A), RENEWED), True, id="the same key file, renewed cert"),
    pytest.param((None, SERVING_KEY), (_keys(KEY_A), SERVING_KEY), True, id="a 0.20.0 seal after the upgrade"),
    pytest.param((_keys(KEY_A), SERVING_KEY), (_keys(KEY_B, KEY_A), RENEWED), True, id="the seal key rotated"),
    pytest.param((None, SERVING_KEY), (None, RENEWED), False, id="no key file, renewed cert"),
    pytest.param((_keys(KEY_A), SERVING_KEY), (_keys(KEY_B), RENEWED), False, id="the old key dropped too soon"),
])
def test_a_restart_with_a_renewed_certificate_adopts_by_the_seal_key_file(
        before: tuple[SealKeys | None, bytes], after: tuple[SealKeys | None, bytes], adopted: bool) -> None:
    """A federator restarted with a renewed serving certificate and restored from an older store: its agent says a
    placement that started after the snapshot Running with the Launch's seal it kept. With the same seal key file
    (or its key kept below a new one, or a seal of 0.20.0's serving key the certificate still has) it is adopted,
    nothing launched again; keyed from the serving key alone, or without the key it was sealed under, it is not
    (an orphan, told to stop) and federator_agent_unproven_words_total says why: other_key."""
    async def scenario() -> None:
        seals.use_keys(*before, required=True)  # what server/app.py does at start
        snapshot, job_id, launch = await _started_after_the_snapshot(("seals",))
        pid = launch.placement.placement_id
        seals.use_keys(*after, required=True)  # the restart: the renewed certificate, the key file kept or not
        restored = Federator(store=snapshot, cycle_interval=0.05)  # type: ignore[arg-type]
        async with agent_stream(restored, features=("seals",)) as agent:
            await agent.send(_update(pid, JobPhase.RUNNING, generation=1, resync=True, launch_seal=launch.seal))
            await agent.send(_report(pid))
            if adopted:
                while restored.jobs[job_id].phase is not JobPhase.RUNNING:
                    await asyncio.sleep(0.01)
                assert [p.placement_id for p in restored.jobs[job_id].placements] == [pid]
                assert not restored.metrics.registry.get_sample_value("federator_agent_unproven_words_total", {
                    "cluster": "east-1", "word": "launch", "reason": seals.OTHER_KEY})
            else:
                assert (await _cancel(agent, pid)).placement_id == pid
                assert pid not in {p.placement_id for p in restored.jobs[job_id].placements}
                assert await _counted(restored, "east-1", "launch", seals.OTHER_KEY) == 1

    asyncio.run(scenario())


@pytest.mark.usefixtures("sealed")
def test_after_a_restore_an_unsealed_placement_placed_again_at_its_generation_is_the_jobs_own(
        caplog: pytest.LogCaptureFixture) -> None:
    """goagentqa62 M4: the WARNING said an unsealed placement newer than the store was "an orphan, cancelled after
    --orphan-grace", yet the restored store places the job again at the very generation it had issued, on the same
    cluster that id names: the Launch is of the id the agent runs, the agent answers it Running (contract step 6),
    and it is the job's own, nothing cancelled, no second run. The WARNING now says so."""
    async def scenario() -> None:
        snapshot, job_id, launch = await _started_after_the_snapshot(())
        pid = launch.placement.placement_id
        restored = Federator(store=snapshot, cycle_interval=0.05, orphan_grace=3600.0)  # type: ignore[arg-type]
        async with agent_stream(restored) as agent:  # an agent that says no seal
            await agent.send(_update(pid, JobPhase.RUNNING, generation=1, resync=True))
            await agent.send(_report(pid))
            while (order := await agent.order()).WhichOneof("body") != "launch":
                assert order.WhichOneof("body") != "cancel", order
            assert order.launch.placement.placement_id == pid  # the job placed again: the very id
            await agent.send(agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=pid, ok=True)))
            await agent.send(_update(pid, JobPhase.RUNNING))  # what the agent holds (step 6)
            await agent.send(_report(pid))
            await _until(restored, job_id, pid, JobPhase.RUNNING)
            await quiet(restored)
            assert [p.placement_id for p in restored.jobs[job_id].placements] == [pid]

    with caplog.at_level(logging.WARNING, logger="federator.server"):
        asyncio.run(scenario())
    (said,) = [r.getMessage() for r in caplog.records if "not adopted (only" in r.getMessage()]
    assert said.endswith("an orphan, cancelled after --orphan-grace, unless the job is placed again on this cluster "
                         "first: that placement is generation 1 again, this very id, which the agent runs already (it "
                         "answers the Launch with it: the job's own, not run twice)")
    hellos = [r.getMessage() for r in caplog.records if "does not say seals back" in r.getMessage()]
    assert hellos and all(m.endswith("(docs/security.md, \"What an agent's word can end, or take\")") and
                          "0.20.0" not in m for m in hellos)  # goagentqa62 L2: a doc, not a source file
