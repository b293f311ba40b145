"""What the agent last said of each placement, said again by every re-sync.

Why a module of its own: the backend's phase changes (its `on_update` callback) become JobUpdates here, and what
they said is kept per placement (the message, the replica counts, the nodes) because a broken stream loses them:
the next stream's re-sync must repeat the reason a placement failed, how many of its replicas serve and where,
not only its phase. The session asks for the re-sync (`resync`), the backend calls `on_update`; neither needs the
other's state. Final phases go through agent/final_updates.py, the one builder of their JobUpdate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from federator.agent.accelerator_models import AcceleratorModels
from federator.agent.backend import Backend, SaysNodes
from federator.agent.final_updates import FinalPhases
from federator.agent.job_digests import JobDigests
from federator.agent.launch_seals import LaunchSeals
from federator.agent.outbox import Outbox
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import JobPhase

_LIVE = frozenset({convert.phase_to_pb(JobPhase.PLACED), convert.phase_to_pb(JobPhase.RUNNING)})


class PlacementUpdates:
    """Each placement's latest message, replica counts and nodes; the JobUpdates that say them."""

    def __init__(self, outbox: Outbox, finals: FinalPhases, *, fencing: Mapping[str, str],
                 digests: JobDigests | None = None, models: AcceleratorModels | None = None,
                 seals: LaunchSeals | None = None) -> None:
        self.outbox = outbox
        self.digests = digests or JobDigests(None)  # each placement's Launch.job_digest (agent/job_digests.py)
        self.models = models or AcceleratorModels(None)  # and its model (agent/accelerator_models.py)
        self.seals = seals or LaunchSeals(None)  # and its Launch.seal (agent/launch_seals.py)
        self.finals = finals
        self.fencing = fencing  # placements this agent is stopping on its own, with why (agent/orders.py)
        self._messages: dict[str, str] = {}  # each placement's latest message, repeated by the re-sync
        self._counts: dict[str, tuple[int, int]] = {}  # each serving placement's (running, ready), re-sent too
        self._nodes: dict[str, tuple[tuple[str, int], ...]] = {}  # each placement's (node, replicas), re-sent too

    def on_update(self, placement_id: str, phase: JobPhase, message: str, *, admission_overdue: bool = False,
                  running: int | None = None, ready: int | None = None,
                  nodes: tuple[tuple[str, int], ...] = (), ended_at: float | None = None) -> None:
        """The backend's callback: a placement's phase (or its counts, or its nodes) changed; a final phase with when
        the workload ended where the backend knows it (`ended_at`, the member's wall clock: agent/ended.py)."""
        if phase is JobPhase.CANCELLED and placement_id in self.fencing:
            message = self.fencing[placement_id]  # why it stopped, for the job's reason, not the backend's "cancelled"
        self._messages[placement_id] = message  # a re-sync repeats it: the reason outlives a broken stream
        if running is not None and not phase.is_terminal:
            self._counts[placement_id] = (running, running if ready is None else ready)  # so does the count
        elif phase.is_terminal:
            self._counts.pop(placement_id, None)
        if nodes and not phase.is_terminal:
            self._nodes[placement_id] = nodes  # JobUpdate.nodes: re-sent with every update, the re-sync's too
        elif phase.is_terminal:
            self._nodes.pop(placement_id, None)
        if not phase.is_terminal:
            self.finals.seen(placement_id, phase)
            self.outbox.put(agent_pb2.AgentMessage(job_update=self._counted(agent_pb2.JobUpdate(
                placement_id=placement_id, phase=convert.phase_to_pb(phase), message=message,
                admission_overdue=admission_overdue and phase is JobPhase.PLACED))))
            return
        self.finals.reached(placement_id, phase, message, ended_at=ended_at)
        self.outbox.put(agent_pb2.AgentMessage(job_update=self._counted(
            self.finals.update(placement_id, phase, message, resync=False))))
        self.outbox.put_report()  # its resources are free now: waiting jobs need not wait for the next tick

    def again(self, placement_id: str, phase: JobPhase) -> None:
        """A launch of a placement already here (adopted by id: the federator placed it again, e.g. after a restore
        or a release while it ran on): its phase as the backend has it now, said at once as an update would, with
        what was said of it before. The backend's own updates come on a change only, and it has none to make, so
        the federator's placement stayed at the Placed its Ack gives, unbilled, and was placed again after
        --start-timeout (outside QA kubedr K7)."""
        message = self._messages.get(placement_id, "")
        if phase.is_terminal:
            update = self.finals.update(placement_id, phase, message, resync=False)
        else:
            self.finals.seen(placement_id, phase)
            update = agent_pb2.JobUpdate(placement_id=placement_id, phase=convert.phase_to_pb(phase), message=message)
        self.outbox.put(agent_pb2.AgentMessage(job_update=self._counted(update)))

    def resync(self, backend: Backend) -> Iterator[agent_pb2.JobUpdate]:
        """A new stream's re-sync: every placement the cluster holds, then the final phase of those that ended
        lately and are gone (agent/final_updates.py `FinalPhases.recently_ended`)."""
        held = backend.placements()
        self.finals.forget_gone(held)
        self._messages = {pid: m for pid, m in self._messages.items() if pid in held}
        self._counts = {pid: c for pid, c in self._counts.items() if pid in held}
        self._nodes = {pid: n for pid, n in self._nodes.items() if pid in held}
        self.digests.keep_only(held)
        self.models.keep_only(held)
        self.seals.keep_only(held)
        if isinstance(backend, SaysNodes):  # a restarted agent's copy is empty: the backend's is not
            self._nodes.update({pid: n for pid, phase in held.items()
                                if not phase.is_terminal and (n := backend.nodes_of(pid))})
        for pid, phase in held.items():
            message = self._messages.get(pid, "")
            update = self.finals.update(pid, phase, message, resync=True) if phase.is_terminal else \
                agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(phase), message=message, resync=True)
            yield self._counted(update)
        for pid, ended in self.finals.recently_ended(held).items():
            yield self.finals.update(pid, ended.phase, ended.message, resync=True)

    def _counted(self, update: agent_pb2.JobUpdate) -> agent_pb2.JobUpdate:
        """`update` with its placement's last replica counts (none for one its backend does not count), and, Placed
        or Running, its job digest, accelerator model and seal (JobUpdate.job_digest, accelerator_model,
        launch_seal)."""
        if update.phase in _LIVE:
            update.job_digest = self.digests.of(update.placement_id)
            update.launch_seal = self.seals.of(update.placement_id)
            update.accelerator_model = self.models.of(update.placement_id)
        counts = self._counts.get(update.placement_id)
        if counts is not None:
            update.replicas_running, update.replicas_ready = counts
        for node, replicas in self._nodes.get(update.placement_id, ()):
            update.nodes.append(agent_pb2.NodeReplicas(node=node, replicas=replicas))
        return update


__all__ = ["PlacementUpdates"]
