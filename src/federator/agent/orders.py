"""The federator's orders as the agent carries them out: Launch, Cancel and Resize, and the agent's own fence.

Why a module of its own: an order's outcome depends on the cluster and on this agent's state, not on the stream
it came on. Whether a Launch is started, answered as a duplicate (held here already, or ended here: contract step
6), or refused (stale, fenced since it arrived, malformed, the cluster in maintenance, its API not answering) is
decided here, and each refusal is an Ack that says why; the session only hands each order over as it arrives
(`Orders.take`) and keeps reading the stream. The fence lives here too: it stops what the orders started, and a
launch in flight when it comes is stopped as it lands.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from federator.agent.accelerator_models import AcceleratorModels
from federator.agent.backend import Backend, Invalid, Resizer
from federator.agent.config import AgentConfig
from federator.agent.fencing import Contact
from federator.agent.final_updates import FinalPhases
from federator.agent.job_digests import JobDigests
from federator.agent.late_launches import CONFIRMED, WITHDRAWN, LateLaunches
from federator.agent.launch_seals import LaunchSeals
from federator.agent.maintenance import maintenance_refusal
from federator.agent.member_health import MemberHealth
from federator.agent.metrics import AgentMetrics
from federator.agent.outbox import Outbox
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import JobPhase

log = logging.getLogger("federator.agent")
ORDERS_AT_ONCE = 16  # launches and cancels carried out at once (each placement's in order: Orders.in_order)
CANCELS_SAID = 4096  # placements whose cancel was logged, remembered to log a repeat at DEBUG (Orders.cancel)
_Order = agent_pb2.Launch | agent_pb2.Cancel | agent_pb2.Resize


class Orders:
    """Carries out the federator's orders on the backend, each placement's in the order they came."""

    def __init__(self, config: AgentConfig, backend: Backend, *, contact: Contact, metrics: AgentMetrics,
                 member: MemberHealth, outbox: Outbox, finals: FinalPhases) -> None:
        self.config = config
        self.backend = backend
        self.contact = contact
        self.metrics = metrics
        self.member = member
        self.outbox = outbox
        self.finals = finals
        self.fences = 0  # fences so far: a launch that began before one and lands after it is stopped
        self.fencing: dict[str, str] = {}  # placements this agent is stopping on its own, with why
        self.digests = JobDigests(backend)  # each placement's Launch.job_digest, said back (agent/job_digests.py)
        self.models = AcceleratorModels(backend)  # each placement's model, said back (agent/accelerator_models.py)
        self.late = LateLaunches()  # launches that arrived past their bound, until the stream confirms them
        self.seals = LaunchSeals(backend)  # each placement's Launch.seal, said back (agent/launch_seals.py)
        # Each placement's latest launch or cancel in flight: one placement's orders run in order, different
        # placements' do not wait for each other, and the stream is read meanwhile (`in_order`).
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(ORDERS_AT_ONCE)
        self._cancels_said: dict[str, None] = {}  # placements whose cancel was logged, oldest first (`cancel`)
        # Says a placement's phase now (agent/updates.py `PlacementUpdates.again`): set by the agent, after the Ack
        # of a launch of a placement already here
        self.said_again: Callable[[str, JobPhase], None] = lambda _pid, _phase: None

    def take(self, msg: agent_pb2.FederatorMessage) -> None:
        """An order as it arrives on the stream: carried out in its placement's turn, the stream read on."""
        kind = msg.WhichOneof("body")
        if kind == "launch":  # dated as it arrives: its wait in this agent's queue is not its age
            launch = msg.launch
            pid, age, bound = launch.placement.placement_id, self.contact.order_age(launch.issued_at), \
                launch.max_age_seconds
            late = age is not None and bound > 0 and age > bound and pid not in self.backend.placements()
            waiter = self.late.hold(pid) if late else None  # held until a later message confirms it
            if not late:  # fresh: it confirms the late ones before it (agent/late_launches.py)
                self.late.dated(age=age, bound=bound)
            self.in_order(pid, functools.partial(self.launch, age=age, fences=self.fences, waiter=waiter), launch,
                          waiter=waiter)
        elif kind == "cancel":
            self.late.cancelled(msg.cancel.placement_id)  # a held launch it withdraws never starts
            self.in_order(msg.cancel.placement_id, self.cancel, msg.cancel)
        elif kind == "resize":
            self.in_order(msg.resize.placement_id, self.resize, msg.resize)

    def in_order(self, placement_id: str, order: Callable[[_Order], Awaitable[None]], body: _Order, *,
                 waiter: asyncio.Future[str] | None = None) -> None:
        """Carry out an order of the federator after the ones of the same placement still in flight, without
        holding the stream. A launch used to be awaited where the stream is read: while a member's API server
        hung on it, no other order was read (a cancel waited behind a launch of another job), and the
        messages that queued up meanwhile read as a silence long enough to fence every placement here.
        `waiter`: a late launch's confirmation (agent/late_launches.py), awaited without holding a slot."""
        before = self._running.get(placement_id)

        async def run() -> None:
            if before is not None:
                await asyncio.wait([before])  # its outcome was handled (and logged) where it ran
            if waiter is not None:
                await asyncio.wait([waiter])
            async with self._slots:
                await order(body)

        task = asyncio.get_running_loop().create_task(run())
        self._running[placement_id] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._running.get(placement_id) is t:
                del self._running[placement_id]
            if not t.cancelled() and t.exception() is not None:
                log.error("order for placement %s failed", placement_id, exc_info=t.exception())

        task.add_done_callback(done)

    async def fence_all(self, why: str) -> None:
        """Stop every placement this cluster runs (self-fencing), before anything else is done."""
        self.fences += 1  # a launch in flight now is stopped as it lands (`launch`)
        self.late.fenced()  # and a late one held for confirmation never starts (agent/late_launches.py)
        running = [pid for pid, phase in self.backend.placements().items() if not phase.is_terminal]
        if running:
            self.metrics.self_fences.inc()
        for pid in running:
            log.warning("fenced: stopping placement %s: %s", pid, why)
            self.metrics.cancelled("fence")
            self.fencing[pid] = f"fenced by the agent of {self.config.cluster}: {why}"
            try:
                await self.backend.cancel(pid)
            finally:
                self.fencing.pop(pid, None)

    async def cancel(self, cancel: agent_pb2.Cancel) -> None:
        if cancel.placement_id in self.backend.placements():
            # Said once: a second Cancel (the federator's kept cancel and its fencing of the re-sync's report, read
            # within a millisecond; outside WAN QA W7) changes nothing and said again read as a second cancel.
            again = cancel.placement_id in self._cancels_said
            self._cancels_said[cancel.placement_id] = None
            if len(self._cancels_said) > CANCELS_SAID:
                self._cancels_said.pop(next(iter(self._cancels_said)))
            log.log(logging.DEBUG if again else logging.INFO, "cancel placement %s%s: %s", cancel.placement_id,
                    " again" if again else "", cancel.reason)
            if cancel.job_ended:  # said back on its Cancelled update (JobUpdate.job_ended), with its seal
                self.finals.job_ended(cancel.placement_id, cancel.seal)
        self.metrics.cancelled("federator")
        await self.backend.cancel(cancel.placement_id)

    async def resize(self, resize: agent_pb2.Resize) -> None:
        """Shrink a placement in place; answer only a Resize it cannot carry out (Ack ok=false, resize=true: the
        federator replaces the part). Sent only because the Hello said "resize", so the backend is a Resizer."""
        if not isinstance(self.backend, Resizer):
            return
        try:
            why = await self.backend.resize(resize.placement_id, resize.generation, resize.replicas)
        except Exception as exc:  # noqa: BLE001 - an API error: the federator replaces the part
            log.exception("resize of %s failed", resize.placement_id)
            why = f"resize failed: {exc}"
        if why is None:
            log.info("placement %s: %d replicas from now on (%s)", resize.placement_id, resize.replicas,
                     resize.reason)
            return
        log.warning("placement %s cannot shrink in place: %s", resize.placement_id, why)
        self.outbox.put(agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=resize.placement_id, ok=False,
                                                                 message=why, resize=True)))

    async def launch(self, launch: agent_pb2.Launch, *, age: float | None = None, fences: int | None = None,
                     waiter: asyncio.Future[str] | None = None) -> None:
        """Carry out a Launch; `age`: its age as it arrived, `fences`: the fences done by then, `waiter`: for one
        that arrived late, whether a later message of the stream confirmed it (agent/late_launches.py).

        Its age is taken on arrival (outside QA, chaos F2): a burst of launches waiting their turn behind a
        member that takes seconds per launch aged in this agent's own queue, and were refused as stale, read as
        the member refusing. What a wait here must not do, start an order the agent should no longer act on, is
        what a fence since its arrival says. And one held here already is not stale: it was launched, and the
        federator sent it again after a reconnect (chaos F1: refused as stale, the running copy was cancelled and
        the job started elsewhere, twice in all)."""
        held = launch.placement.placement_id in self.backend.placements()
        if fences is None:  # not from the stream (a test): dated now
            age, fences = self.contact.order_age(launch.issued_at), self.fences
        if waiter is not None:
            outcome = waiter.result()
            if outcome != CONFIRMED and not held:  # no Ack: the re-sync re-sends what the federator stands behind
                log.log(logging.INFO if outcome == WITHDRAWN else logging.DEBUG,  # the others summed up once
                        "launch order %s arrived %.1fs old and was not started: %s", launch.placement.placement_id,
                        age or 0.0, outcome)
                return
            age = None  # as young as the fresh message that confirmed it
        if self.fences != fences and not held:
            self.outbox.put(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=launch.placement.placement_id, ok=False,
                message="stale order: this agent fenced itself after it arrived")))
            self.metrics.launched("refused", None)
            return
        if not held and age is not None and launch.max_age_seconds > 0 and age > launch.max_age_seconds:
            log.warning("refusing stale launch order %s: issued %.1fs ago, over its bound of %gs",
                        launch.placement.placement_id, age, launch.max_age_seconds)
            self.outbox.put(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=launch.placement.placement_id, ok=False,
                message=f"stale order: issued {age:.1f}s ago, over its bound of {launch.max_age_seconds:g}s")))
            self.metrics.launched("refused", None)
            return
        try:
            placement = convert.placement_from_pb(launch.placement)
            spec = convert.spec_from_pb(launch.spec)
        except convert.WireError as exc:
            log.warning("refusing a malformed launch order for %r: %s", launch.placement.placement_id, exc)
            self.outbox.put(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=launch.placement.placement_id, ok=False, message=f"malformed launch: {exc}")))
            self.metrics.launched("refused", None)
            return
        ended = self.finals.ended.get(placement.placement_id)
        if ended is not None and placement.placement_id not in self.backend.placements():
            # It ran here, ended and the cluster forgot it (the simulated one a minute after, a Kubernetes member
            # after ttlSecondsAfterFinished): the same id twice starts nothing new (contract step 6); its end again.
            log.info("placement %s already ended here (%s): nothing new started", placement.placement_id,
                     ended.phase.value)
            self.outbox.put(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=placement.placement_id, ok=True, message=f"already ended here: {ended.message}")))
            self.outbox.put(agent_pb2.AgentMessage(job_update=self.finals.update(
                placement.placement_id, ended.phase, ended.message, resync=False)))
            return
        if self.config.maintenance and placement.placement_id not in self.backend.placements():
            refusal = maintenance_refusal(cluster=self.config.cluster, reason=self.config.maintenance)
            log.warning("refused placement %s (job %s): %s", placement.placement_id, placement.job_id, refusal)
            self.outbox.put(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=placement.placement_id, ok=False, message=refusal)))
            self.metrics.launched("refused", None)
            return
        if not self.member.reachable and placement.placement_id not in self.backend.placements():
            away = self.member.refusal()  # at once: the launch would wait on an API that does not answer
            log.warning("refused placement %s (job %s): %s", placement.placement_id, placement.job_id, away)
            self.outbox.put(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
                placement_id=placement.placement_id, ok=False, message=away)))
            self.metrics.launched("refused", None)
            return
        again = placement.placement_id in self.backend.placements()
        loop = asyncio.get_running_loop()
        started, fences = loop.time(), self.fences
        self.digests.launched(placement.placement_id, launch.job_digest)
        self.seals.launched(placement.placement_id, launch.seal)
        self.models.launched(placement.placement_id, placement.accelerator_model)
        try:
            why = await self.backend.launch(placement, spec)
            self.metrics.launched("ok" if why is None else "refused", loop.time() - started)
        except Exception as exc:  # a backend failure refuses this placement, it does not kill the agent
            log.exception("launch of %s failed", placement.placement_id)
            why = f"launch failed: {exc}"
            self.metrics.launched("failed", loop.time() - started)
        if why is None and self.fences != fences:  # the agent fenced while the member was launching it
            why = f"fenced by the agent of {self.config.cluster} while it was being launched"
            log.warning("fenced: stopping placement %s, launched after the fence", placement.placement_id)
            self.metrics.cancelled("fence")
            await self.backend.cancel(placement.placement_id)
        if why is None and not again:
            log.info("launched placement %s (job %s, generation %d, %d replicas)", placement.placement_id,
                     placement.job_id, placement.generation, placement.replicas)
        elif why is None:
            log.info("placement %s is already here: nothing new started", placement.placement_id)
        else:  # the federator hears why too, but this cluster's operator reads this log (e.g. a missing namespace)
            log.warning("refused placement %s (job %s): %s", placement.placement_id, placement.job_id, why)
        self.outbox.put(agent_pb2.AgentMessage(ack=agent_pb2.Ack(
            placement_id=placement.placement_id, ok=why is None, message=why or "launched",
            invalid=isinstance(why, Invalid))))
        if why is None and again and (phase := self.backend.placements().get(placement.placement_id)) is not None:
            self.said_again(placement.placement_id, phase)  # nothing changed here: no update would follow the Ack
        if why is None:
            self.outbox.put_report()


__all__ = ["ORDERS_AT_ONCE", "Orders"]
