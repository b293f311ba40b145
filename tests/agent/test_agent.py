"""The agent against a scripted federator over a real loopback socket.

Checks the agent's side of the protocol: the re-sync order (placements before
the first report), idempotent launches, refusals that say why, coalesced
reports, and reconnecting after the federator ends the stream.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest
from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import ENDED_KEPT_SECONDS, Agent
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec, Placement

RUNNING_PB = convert.phase_to_pb(JobPhase.RUNNING)


def test_a_repeated_launch_starts_nothing_new_and_both_are_acked(caplog: pytest.LogCaptureFixture) -> None:
    fed = ScriptedFederator([[launch("j.g1.c-1"), launch("j.g1.c-1")]])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: kinds(fed.sessions[0]).count("ack") == 2)
        acks = [m.ack for m in fed.sessions[0] if m.WhichOneof("body") == "ack"]
        assert all(a.ok and a.placement_id == "j.g1.c-1" for a in acks)
        assert list(agent.backend.placements()) == ["j.g1.c-1"]
        assert agent.backend.capacity().free_accelerators == 4  # bound once, not twice

    with caplog.at_level(logging.INFO, logger="federator.agent"):
        asyncio.run(with_agent(fed, body))
    assert sum("launched placement j.g1.c-1" in r.message for r in caplog.records) == 1
    assert any("already here" in r.message for r in caplog.records)


def test_a_launch_of_a_placement_already_running_here_says_it_runs_after_its_ack() -> None:
    """Adopted by id (a federator placed it again: after a host restore, a release while it ran on): the Ack alone
    left the federator's placement at Placed, unbilled, and placed again after --start-timeout, for nothing here
    changed and the backend's updates come on a change only (outside QA kubedr K7). Its phase follows the Ack."""
    fed = ScriptedFederator([[launch("j.g1.c-1")]])

    def said(msgs: list[agent_pb2.AgentMessage], phase: int) -> list[agent_pb2.JobUpdate]:
        return [m.job_update for m in msgs if m.WhichOneof("body") == "job_update" and m.job_update.phase == phase
                and not m.job_update.resync]

    async def body(agent: Agent) -> None:
        got = fed.sessions
        await fed.until(lambda: said(got[0], RUNNING_PB))
        n = len(got[0])
        await agent._launch(launch("j.g1.c-1").launch)  # the same placement id again: already here
        # what the outbox holds after the Ack goes out with it: the update, or else the capacity report it asks for
        await fed.until(lambda: len(kinds(got[0][n:])) > 1 + kinds(got[0][n:]).index("ack")
                        if "ack" in kinds(got[0][n:]) else False)
        after = got[0][n:]
        assert kinds(after)[kinds(after).index("ack") + 1] == "job_update", kinds(after)
        [update] = said(after, RUNNING_PB)
        assert update.placement_id == "j.g1.c-1"
        assert list(agent.backend.placements()) == ["j.g1.c-1"]  # nothing new started

    asyncio.run(with_agent(fed, body))


def test_a_launch_of_a_placement_that_ended_here_and_is_still_held_says_its_end_after_its_ack() -> None:
    """The other way: the placement the federator launches again has ended here and its cluster still holds it (the
    member's finished Job, before its TTL): its final phase and end follow the Ack, as a re-sync would say them."""
    short = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                       "metadata": {"name": "j", "annotations": {"federator.io/sim-duration": "0.1s"}},
                       "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 4}}})
    fed = ScriptedFederator([[launch("j.g1.c-1", spec=short)]])
    succeeded = convert.phase_to_pb(JobPhase.SUCCEEDED)

    def ends(msgs: list[agent_pb2.AgentMessage]) -> list[agent_pb2.JobUpdate]:
        return [m.job_update for m in msgs if m.WhichOneof("body") == "job_update"
                and m.job_update.phase == succeeded and not m.job_update.resync]

    async def body(agent: Agent) -> None:
        got = fed.sessions
        await fed.until(lambda: ends(got[0]))
        n = len(got[0])
        assert agent.backend.placements() == {"j.g1.c-1": JobPhase.SUCCEEDED}  # ended, still held
        await agent._launch(launch("j.g1.c-1", spec=short).launch)
        await fed.until(lambda: len(kinds(got[0][n:])) > 1 + kinds(got[0][n:]).index("ack")
                        if "ack" in kinds(got[0][n:]) else False)
        after = got[0][n:]
        assert kinds(after)[kinds(after).index("ack") + 1] == "job_update", kinds(after)
        [again] = ends(after)
        assert again.placement_id == "j.g1.c-1" and again.ended_at == ends(got[0][:n])[0].ended_at

    asyncio.run(with_agent(fed, body))


def test_a_launch_that_does_not_fit_is_refused_saying_why(caplog: pytest.LogCaptureFixture) -> None:
    """To the federator, and in the agent's log, where the member's operator looks."""
    fed = ScriptedFederator([[launch("big.g1.c-1", gpus_replicas=3)]])  # 3 x 4 accelerators on one 8-accelerator node
    said: list[str] = []

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
        (ack,) = [m.ack for m in fed.sessions[0] if m.WhichOneof("body") == "ack"]
        assert not ack.ok and ack.message
        said.append(ack.message)

    with caplog.at_level(logging.INFO, logger="federator.agent"):
        asyncio.run(with_agent(fed, body))
    (logged,) = [r for r in caplog.records if r.getMessage().startswith("refused placement big.g1.c-1")]
    assert logged.levelno == logging.WARNING and logged.getMessage().endswith(f": {said[0]}")


def test_after_the_stream_ends_the_agent_reconnects_and_re_syncs_placements_before_its_first_report() -> None:
    end = agent_pb2.FederatorMessage()
    fed = ScriptedFederator([[launch("j.g1.c-1"), end], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        second = fed.sessions[1]
        assert kinds(second)[:3] == ["hello", "job_update", "capacity"]
        assert second[1].job_update.placement_id == "j.g1.c-1" and second[1].job_update.resync
        assert list(second[2].capacity.placement_ids) == ["j.g1.c-1"]

    asyncio.run(with_agent(fed, body))


def test_a_placement_that_failed_while_the_stream_was_down_is_re_synced_with_its_real_message() -> None:
    failing = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                         "metadata": {"name": "j", "annotations": {"federator.io/sim-duration": "0.1s",
                                                                   "federator.io/sim-startup": "0.05s",
                                                                   "federator.io/sim-outcome": "Failed"}},
                         "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 4}}})
    fed = ScriptedFederator([[launch("j.g1.c-1", spec=failing)], []])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: any(m.job_update.phase == convert.phase_to_pb(JobPhase.FAILED)
                                    for m in fed.sessions[0]))
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks: the re-sync must carry the failure
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        (update,) = [m.job_update for m in fed.sessions[1] if m.WhichOneof("body") == "job_update"]
        assert update.resync and update.phase == convert.phase_to_pb(JobPhase.FAILED)
        assert update.message == "failed after 0.1s (exit code 1)"  # the real reason, not a placeholder

    asyncio.run(with_agent(fed, body))


def test_reports_coalesce_when_the_stream_is_slow() -> None:
    fed = ScriptedFederator([[]])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: kinds(fed.sessions[0]).count("capacity") >= 3)
        for _ in range(50):  # a burst of launches each asks for a report; at most one waits
            agent._queue_report()  # noqa: SLF001 - the coalescing under test
        assert agent._outbox.qsize() <= 1  # noqa: SLF001

    asyncio.run(with_agent(fed, body))


def test_a_finished_placement_is_followed_at_once_by_a_report_that_frees_its_gpus() -> None:
    short = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                       "metadata": {"name": "j", "annotations": {"federator.io/sim-duration": "0.2s",
                                                                 "federator.io/sim-startup": "0s"}},
                       "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 4}}})
    fed = ScriptedFederator([[launch("j.g1.c-1", spec=short)]], report_interval=3600)  # no periodic report

    def done_at() -> int:
        """Where the placement's final JobUpdate stands in what the agent sent (past the end until then)."""
        return next((i for i, m in enumerate(fed.sessions[0]) if m.WhichOneof("body") == "job_update"
                     and convert.phase_from_pb(m.job_update.phase).is_terminal), len(fed.sessions[0]))

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "capacity" in kinds(fed.sessions[0][done_at() + 1:]))
        after = next(m.capacity for m in fed.sessions[0][done_at() + 1:] if m.WhichOneof("body") == "capacity")
        assert "j.g1.c-1" not in after.placement_ids
        assert sum(p.free_accelerators for p in after.accelerator_pools) == 8

    asyncio.run(with_agent(fed, body))


class ForgettingBackend(SimBackend):
    """A simulated member that forgets a placement it refuses, as the kube backend does once the refused gang's
    objects are deleted."""

    def refuse(self, placement_id: str, why: str) -> None:
        run = self._runs.pop(placement_id)
        if run.task:
            run.task.cancel()
        self.nodes.unbind(placement_id)
        self._on_update(placement_id, JobPhase.CANCELLED, why)


GANG_TIMEOUT = "refused: gang timeout on c-1: 1 of 2 pods bound to nodes after 120s"


def updates(msgs: list[agent_pb2.AgentMessage], pid: str) -> list[agent_pb2.JobUpdate]:
    return [m.job_update for m in msgs if m.WhichOneof("body") == "job_update" and m.job_update.placement_id == pid]


def test_a_refusal_lost_with_the_stream_is_re_synced_though_the_cluster_no_longer_holds_the_placement() -> None:
    fed = ScriptedFederator([[launch("j.g1.c-1")], []])
    backend = ForgettingBackend(FLEET["c-1"])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
        agent._outbox.put_nowait(None)  # noqa: SLF001 - the stream breaks, and then the member refuses the gang:
        backend.refuse("j.g1.c-1", GANG_TIMEOUT)  # its update is queued for a stream that is gone
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        assert updates(fed.sessions[0], "j.g1.c-1") == []  # lost with the first stream
        second = fed.sessions[1]
        assert kinds(second)[:3] == ["hello", "job_update", "capacity"]
        (update,) = updates(second, "j.g1.c-1")
        assert update.resync and update.phase == convert.phase_to_pb(JobPhase.CANCELLED)
        assert update.message == GANG_TIMEOUT  # the federator can tell a refusal from a lost placement
        assert "j.g1.c-1" not in second[2].capacity.placement_ids

    asyncio.run(with_agent(fed, body, backend=backend))


def test_a_placement_held_past_the_admission_timeout_is_sent_to_the_federator_as_overdue() -> None:
    """The member's own queue holds it: the agent asks the federator to move it (admission_overdue) and leaves it
    where it is; only the federator knows whether another cluster can run it."""
    fed = ScriptedFederator([[launch("j.g1.c-1")]])
    backend = ForgettingBackend(FLEET["c-1"])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
        backend._on_update("j.g1.c-1", JobPhase.PLACED, "waiting for Kueue admission on c-1: ...; held 600s",  # noqa: SLF001
                           admission_overdue=True)
        backend._on_update("j.g1.c-1", JobPhase.RUNNING, "", admission_overdue=True)  # noqa: SLF001 - never with Running
        await fed.until(lambda: len(updates(fed.sessions[0], "j.g1.c-1")) >= 2)
        overdue = [u for u in updates(fed.sessions[0], "j.g1.c-1") if u.admission_overdue]
        assert [(u.phase, u.message) for u in overdue] == [
            (convert.phase_to_pb(JobPhase.PLACED), "waiting for Kueue admission on c-1: ...; held 600s")]

    asyncio.run(with_agent(fed, body, backend=backend))


def test_a_placement_that_ended_longer_ago_than_the_kept_window_is_not_re_synced() -> None:
    fed = ScriptedFederator([[launch("j.g1.c-1"), launch("k.g1.c-1")], []])
    backend = ForgettingBackend(FLEET["c-1"])

    async def body(agent: Agent) -> None:
        await fed.until(lambda: kinds(fed.sessions[0]).count("ack") == 2)
        backend.refuse("j.g1.c-1", GANG_TIMEOUT)
        backend.refuse("k.g1.c-1", GANG_TIMEOUT)
        old = agent._ended["j.g1.c-1"]  # noqa: SLF001 - age one record past the window
        agent._ended["j.g1.c-1"] = replace(old, at=old.at - ENDED_KEPT_SECONDS - 1)  # noqa: SLF001
        agent._live_since = old.at - ENDED_KEPT_SECONDS - 1  # noqa: SLF001 - and the stream up all that time
        agent._outbox.put_nowait(None)  # noqa: SLF001
        await fed.until(lambda: len(fed.sessions) == 2 and "capacity" in kinds(fed.sessions[1]))
        assert updates(fed.sessions[1], "j.g1.c-1") == []  # the federator has re-placed that job by now
        assert [u.phase for u in updates(fed.sessions[1], "k.g1.c-1")] == [convert.phase_to_pb(JobPhase.CANCELLED)]

    asyncio.run(with_agent(fed, body, backend=backend))


def test_a_placement_the_agent_fences_is_reported_cancelled_saying_why() -> None:
    fed = ScriptedFederator([[launch("j.g1.c-1")]])  # then silent: no heartbeat, no lease in its Welcome

    async def body(agent: Agent) -> None:
        await fed.until(lambda: any(u.phase == convert.phase_to_pb(JobPhase.CANCELLED)
                                    for u in updates(fed.sessions[0], "j.g1.c-1")))
        (cancelled,) = [u for u in updates(fed.sessions[0], "j.g1.c-1")
                        if u.phase == convert.phase_to_pb(JobPhase.CANCELLED)]
        assert cancelled.message.startswith("fenced by the agent of c-1: ")  # the job's reason, not "cancelled"
        assert "without the federator" in cancelled.message

    asyncio.run(with_agent(fed, body, fence_after=0.4))


class _HangingBackend(SimBackend):
    """A member whose API server hangs on one placement's launch until released."""

    def __init__(self, *args: object, hang: str) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.hang = hang
        self.release = asyncio.Event()

    async def launch(self, placement: Placement, spec: JobSpec) -> str | None:
        if placement.placement_id == self.hang:
            await self.release.wait()
        return await super().launch(placement, spec)


def test_a_launch_the_member_hangs_on_holds_up_no_other_order() -> None:
    """A launch was awaited where the stream is read: a hung member API server held every later order
    (here a launch and a cancel of another job) until it answered."""
    cancel = agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id="b.g1.c-1", reason="done"))
    fed = ScriptedFederator([[launch("a.g1.c-1"), launch("b.g1.c-1"), cancel, launch("a.g1.c-1")]])
    backend = _HangingBackend(FLEET["c-1"], hang="a.g1.c-1")

    async def body(agent: Agent) -> None:
        await fed.until(lambda: any(u.phase == convert.phase_to_pb(JobPhase.CANCELLED)
                                    for u in updates(fed.sessions[0], "b.g1.c-1")))
        acks = [m.ack.placement_id for m in fed.sessions[0] if m.WhichOneof("body") == "ack"]
        assert acks == ["b.g1.c-1"]  # b launched and cancelled while a's launch hangs
        backend.release.set()
        await fed.until(lambda: [m.ack.placement_id for m in fed.sessions[0]
                                 if m.WhichOneof("body") == "ack"].count("a.g1.c-1") == 2)
        assert "a.g1.c-1" in backend.placements()
        assert backend.capacity().free_accelerators == 4  # a's two launches, one after the other: bound once

    asyncio.run(with_agent(fed, body, backend=backend))


def test_a_launch_that_lands_after_the_agent_fenced_is_stopped_at_once() -> None:
    """The fence stops what runs; a launch the member was still working on when the agent fenced must not
    start a job the federator is moving elsewhere."""
    fed = ScriptedFederator([[launch("a.g1.c-1")]])  # then silent: the agent fences after fence_after
    backend = _HangingBackend(FLEET["c-1"], hang="a.g1.c-1")

    async def body(agent: Agent) -> None:
        while agent._fences == 0:  # the fence came while the member still works on the launch
            await asyncio.sleep(0.05)
        backend.release.set()
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
        (ack,) = [m.ack for m in fed.sessions[0] if m.WhichOneof("body") == "ack"]
        assert not ack.ok and "fenced by the agent of c-1 while it was being launched" in ack.message
        phase = backend.placements().get("a.g1.c-1")
        assert phase is None or phase.is_terminal
        assert backend.capacity().free_accelerators == 8

    asyncio.run(with_agent(fed, body, backend=backend, fence_after=0.4))


def test_a_simulated_service_serves_until_cancelled_and_training_runs_its_time() -> None:
    """Outside QA: a simulated member ended inference replicas "finished after 30s", and a spread job then read
    Running with most of its replicas gone. Without `federator.io/sim-duration` an inference job now serves
    until cancelled; a training job still runs 30 s, and an explicit duration holds for either kind."""
    from federator.backends.sim.runtime import run_time
    from federator.model import JobKind, JobSpec, Resources

    def spec(kind: JobKind, duration: str = "") -> JobSpec:
        return JobSpec(name="x", kind=kind, replicas=1, resources=Resources(cpu_milli=1000),
                       annotations=(("federator.io/sim-duration", duration),) if duration else ())

    assert run_time(spec(JobKind.INFERENCE)) is None
    assert run_time(spec(JobKind.TRAINING)) == 30.0
    assert run_time(spec(JobKind.INFERENCE, "3s"), time_scale=0.5) == 1.5
