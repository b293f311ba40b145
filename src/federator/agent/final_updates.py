"""The final phase of a placement as the agent says it: one JobUpdate builder, and the ends kept for the re-sync.

Why a module of its own: the agent says a final phase in four places: the live update as a placement ends, the
re-sync of a placement the cluster still holds in its final phase, the re-sync of one that ended lately and the
cluster forgot (`FinalPhases.recently_ended`), and the answer to a Launch of a placement that already ended here
(agent.proto, contract step 6). Each used to build its JobUpdate itself, and every field a final phase gained
(`lost`, then `ended_at`) had to be added to each: one left out and the federator reads the same end differently
depending on which path told it (re-runs a lost placement as refused, or bills a job to a re-sync). Built here
once (`FinalPhases.update`), they say the same fields for the same end (tests/agent/test_agent_final_updates.py).

The ends are kept after the backend forgets a placement, for as long as the federator may not have had them
(`FinalPhases.prune`). Each is dated by the workload where the backend says when it ended (agent/ended.py,
`contact_end`), bounded by when this agent saw the placement run (`FinalPhases.seen`).
"""

from __future__ import annotations

from federator.agent.ended import Ended, contact_end, on_federator_clock
from federator.agent.fencing import Contact
from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.lost_placements import marked_lost
from federator.model import JobPhase

ENDED_KEPT_SECONDS = 86_400.0
"""How long, of time with a stream up, a re-sync repeats the final phase of a placement the cluster no longer
holds: a day, or the federator's lost_after_seconds if longer. Until 0.16.0 it was that lost-after time only (120 s
by default: by then a running federator has had the end), but a federator whose store is restored from an older
snapshot (a host cluster's etcd, a --db backup) holds such a placement Running again, takes it as lost, and ran the
job again from the start: every job that finished and was cleaned up since the snapshot (a CI object's
ttlSecondsAfterFinished), unless the restore came within 2 minutes of its end (outside QA, Kubernetes DR, K1). Told
the end, it marks the job as it ended. A day covers a restore decided within hours; the count is bounded below."""
ENDED_KEPT_AT_MOST = 10_000
"""Final phases kept at most, oldest forgotten first (as many as the outbox holds: agent/outbox.py)."""


def lost(phase: JobPhase, message: str) -> bool:
    """JobUpdate.lost: a Failed placement the backend lost (lost_placements.py). The field is the mark; the
    message's words are for the people who read it."""
    return phase is JobPhase.FAILED and marked_lost(message)


class FinalPhases:
    """The placements that ended lately, oldest first, and the JobUpdate that says a final phase."""

    def __init__(self, contact: Contact) -> None:
        self.contact = contact
        self.ended: dict[str, Ended] = {}
        self.live_since: float | None = None  # when the current stream was welcomed (None: no stream)
        self.kept = ENDED_KEPT_SECONDS  # a day, or the current federator's lost-after time if longer (`stream_up`)
        # Each live placement: (when this agent saw it run, or first heard of it, on the contact clock; seen Running).
        self.since: dict[str, tuple[float, bool]] = {}
        self.born = contact.clock()  # what a placement no update of which came yet ran since at the latest
        # Placements a Cancel stopped that ended their job (Cancel.job_ended): their Cancelled updates say so, so a
        # federator restored from an older snapshot ends that job rather than running it again (outside QA,
        # Kubernetes DR, K1). Each is forgotten with its end (`prune`); only a held placement's Cancel adds one.
        # Each with the Cancel's seal (Cancel.seal, "" from a federator before 0.20.0), said back with it
        # (JobUpdate.cancel_seal): a federator takes job_ended only with its own seal (server/seals.py).
        self._jobs_ended: dict[str, str] = {}

    def update(self, placement_id: str, phase: JobPhase, message: str, *, resync: bool) -> agent_pb2.JobUpdate:
        """The JobUpdate of a placement in its final phase `phase`, whichever path says it (see module); its
        ended_at is the end noted here (0 if none is: it ended before this agent started)."""
        return agent_pb2.JobUpdate(
            placement_id=placement_id, phase=convert.phase_to_pb(phase), message=message, resync=resync,
            lost=lost(phase, message), ended_at=on_federator_clock(self.contact, self.ended.get(placement_id)),
            job_ended=phase is JobPhase.CANCELLED and placement_id in self._jobs_ended,
            cancel_seal=self._jobs_ended.get(placement_id, "") if phase is JobPhase.CANCELLED else "")

    def job_ended(self, placement_id: str, seal: str = "") -> None:
        """A Cancel of a placement the cluster holds ended its job (Cancel.job_ended, sealed by `seal`): its Cancelled
        update says so, with the seal."""
        self._jobs_ended[placement_id] = seal

    def seen(self, placement_id: str, phase: JobPhase) -> None:
        """A live placement's update: the earliest its end may be dated is when this agent first saw it Running (else
        first heard of it at all): a member clock behind this host's must not date an end before the run began."""
        noted = self.since.get(placement_id)
        if noted is None or (phase is JobPhase.RUNNING and not noted[1]):
            self.since[placement_id] = (self.contact.clock(), phase is JobPhase.RUNNING)

    def reached(self, placement_id: str, phase: JobPhase, message: str, *, ended_at: float | None = None) -> None:
        """Note that a placement reached its final phase (the newest end): when the workload ended (`ended_at`, the
        backend's word on the member's wall clock; None: unknown) as the contact clock has it, else now."""
        since = self.since.pop(placement_id, (self.born, False))[0]
        self.ended.pop(placement_id, None)
        self.ended[placement_id] = Ended(phase, message, contact_end(self.contact, ended_at, since=since))
        self.prune()

    def forget_gone(self, held: dict[str, JobPhase]) -> None:
        """Drop when placements the cluster no longer holds were seen running: they end no more."""
        self.since = {pid: s for pid, s in self.since.items() if pid in held}

    def stream_up(self, lost_after_seconds: float) -> None:
        """A stream was welcomed, with the federator's lost-after time: ends age from now on (`prune`)."""
        self.kept = max(lost_after_seconds, ENDED_KEPT_SECONDS)
        self.live_since = self.contact.clock()

    def stream_down(self) -> None:
        """The stream ended: prune with the time it was up; the next one's starts again."""
        self.prune()
        self.live_since = None

    def recently_ended(self, held: dict[str, JobPhase]) -> dict[str, Ended]:
        """Placements that ended within the day (`ENDED_KEPT_SECONDS`) and that the cluster no longer holds.

        Their final update may have died with the last stream: a gang refused, or a Job deleted in the member,
        while the agent was reconnecting. Without it the federator sees only that the placement is gone: it
        re-queues the job without marking this cluster as one that refused it, and re-places it here to be
        refused again. So the re-sync repeats them; the federator ignores what it already had.
        """
        self.prune()
        return {pid: e for pid, e in self.ended.items() if pid not in held}

    def prune(self) -> None:
        """Forget a final phase once a stream has been up for a day (`ENDED_KEPT_SECONDS`) since it ended (by then
        the federator has had it, and a restore of its store is a day old); keep at most ENDED_KEPT_AT_MOST.

        Counted only while a stream is up: a final phase sent on a stream into a federator that was down or
        paused is not known there, and a federator that comes back after more than lost-after took a placement
        the cluster no longer holds as lost and ran the job again (outside SRE QA F1: jobs that had succeeded
        during a 142 s federator pause were run a second time). Time without a stream no longer ages them."""
        now = self.contact.clock()
        since = self.live_since
        while self.ended:
            # The first noted: max(at, since) grows along the dict but for an end dated by its workload before one
            # noted earlier, which is then forgotten a little later than it could be, never sooner.
            oldest = next(iter(self.ended.values()))
            if len(self.ended) <= ENDED_KEPT_AT_MOST and (since is None or now - max(oldest.at, since) <= self.kept):
                return
            gone = next(iter(self.ended))
            del self.ended[gone]
            self._jobs_ended.pop(gone, None)


__all__ = ["ENDED_KEPT_AT_MOST", "ENDED_KEPT_SECONDS", "FinalPhases", "lost"]
