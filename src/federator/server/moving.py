"""Moving a placement the member's own queue holds too long: only to where the job can run now.

Why: a member running Kueue admits work in its own order and to its own quota,
which the federator sees only in part (a cohort's loans, local work queued
first). The agent used to delete a placement Kueue had held past its admission
timeout, and the federator placed the job again; where no other cluster could
run it (the only member with its model), that was the same member, at the back
of Kueue's queue, again after every timeout, so the job never reached the front.
Whether a job can run elsewhere is known only here, with every member's report.
So the agent asks (`JobUpdate.admission_overdue`) and the federator answers:
it moves the job when a cycle would place all of it on another cluster now,
and otherwise leaves it in the member's queue, where it keeps its place.

The asks are answered together at the start of the next scheduling turn
(`Cycles`), by one scheduler cycle over the snapshot: the overdue jobs compete for
the room elsewhere as in any cycle, so two of them are never both moved to room
for one. The cycle preempts no one (a move evicts nobody), avoids each job's
queueing cluster and the clusters that refused it lately, keeps clear of the room
reserved for waiting gangs (their requests compete in it), and counts the queues'
usage as it stands, less the overdue jobs' own. A job moved is queued again at
once, and the same turn's cycle places it. Jobs spread over several clusters
are not moved: their other replicas run, and a share is not a job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from federator.model import Job, JobId, JobPhase
from federator.scheduler import Allocation, Scheduler, SchedulerConfig, Snapshot
from federator.scheduler.framework import PlacementRequest
from federator.scheduler.reservation import Reservation

Windowed = Callable[[Sequence[PlacementRequest]], tuple[list[PlacementRequest], dict[str, float]]]
"""Requests given their run bounds, and the maintenance windows ahead to pass the scheduler with them."""


@dataclass(frozen=True, slots=True)
class Ask:
    """An agent's word that its member's queue has held a placement past the admission timeout."""

    cluster: str
    placement_id: str
    message: str  # the agent's, in the member's words (Kueue's reason, how long it has held it)


class Moves:
    """The asks not answered yet (one per job: the newest), and the cycle that answers them."""

    def __init__(self) -> None:
        self._asked: dict[JobId, Ask] = {}
        self._scheduler: Scheduler | None = None
        self._config: SchedulerConfig | None = None  # the policy `_scheduler` was made from

    def ask(self, job_id: JobId, ask: Ask) -> None:
        self._asked[job_id] = ask

    def __len__(self) -> int:
        return len(self._asked)

    def take(self, jobs: dict[JobId, Job]) -> list[tuple[Job, Ask]]:
        """The asks whose placement is still current and still Placed, the rest dropped: a placement admitted,
        moved or ended since it asked is not the agent's question any more."""
        asked, self._asked = self._asked, {}
        out = []
        for job_id, ask in asked.items():
            job = jobs.get(job_id)
            if job is None or job.phase.is_terminal:
                continue
            if any(p.placement_id == ask.placement_id and p.phase is JobPhase.PLACED for p in job.placements):
                out.append((job, ask))
        return out

    def scheduler(self, config: SchedulerConfig) -> Scheduler:
        """The policy's scheduler without preemption: a move never evicts anyone."""
        if self._scheduler is None or config is not self._config:
            self._scheduler, self._config = Scheduler(replace(config, preemption=False)), config
        return self._scheduler


def room_for(scheduler: Scheduler, snapshot: Snapshot, running: Sequence[Allocation],
             overdue: Sequence[tuple[Job, Ask]], avoided: Callable[[JobId], tuple[str, ...]], now: float, *,
             reserving: Sequence[PlacementRequest] = (), reservations: Sequence[Reservation] = (),
             resting: Mapping[JobId, float] | None = None,
             windowed: Windowed | None = None) -> dict[JobId, str]:
    """For each overdue job a cycle would place whole elsewhere now, the cluster(s) it would go to.

    A job that runs on more than its queueing cluster (spread) is left out; each request avoids its queueing cluster
    and those `avoided` names. `reserving` are the requests of the gangs that have `reservations` (the live
    cycle's, server/reservations.py): they compete here too, so their room stays theirs. Without them an overdue job
    was moved into room reserved for a gang, lost its place in its member's queue, and then waited `Reserved` in the
    same turn's cycle, which keeps that room. `windowed` gives the requests their run bounds and the maintenance
    windows ahead (server/maintenance_windows.py): without it an overdue job was moved onto a cluster whose window
    it would cross, where the cycle itself would never have placed it."""
    requests = []
    for job, ask in overdue:
        active = [p for p in job.placements if p.phase.is_active]
        if len(active) == 1 and active[0].cluster == ask.cluster:
            requests.append(PlacementRequest(job.job_id, job.spec, job.spec.replicas, job.submitted_at,
                                             avoid_clusters=tuple(sorted(set(avoided(job.job_id)) | {ask.cluster}))))
    if not requests:
        return {}
    ids = {r.job_id for r in requests}
    wanted = {r.job_id: r.replicas for r in requests}
    requests += [r for r in reserving if r.job_id not in ids]
    requests, ahead = windowed(requests) if windowed is not None else (requests, {})
    result = scheduler.schedule(snapshot, requests, running=[a for a in running if a.job_id not in ids], now=now,
                                reservations=reservations, resting=resting, maintenance=ahead)
    return {d.job_id: ",".join(sorted({a.cluster for a in d.assignments})) for d in result.decisions
            if d.job_id in wanted and sum(a.replicas for a in d.assignments) >= wanted[d.job_id]}


def moved_reason(ask: Ask, target: str, chars: int) -> str:
    """The job's re-queue reason when its overdue placement moves."""
    return (f"{ask.cluster} held placement {ask.placement_id} unadmitted past its admission timeout "
            f"({ask.message[:chars]}); moved: {target} can run it now")


def _kept_note(cluster: str) -> str:
    return f"; no other cluster can run it now, so it keeps its place in {cluster}'s queue"


def kept_message(ask: Ask) -> str:
    """The placement's message when no other cluster can run the job: it stays in the member's queue."""
    return f"{ask.message}{_kept_note(ask.cluster)}"


def is_kept(message: str, cluster: str) -> bool:
    """Whether a placement's message carries the federator's answer that it stays in `cluster`'s queue."""
    return message.endswith(_kept_note(cluster))


def still_kept(old: str, new: str, cluster: str) -> str:
    """An overdue placement's new message from its agent (Kueue's next reason, "4 more needed" after "8 more"),
    with the answer it was given kept on: until the member admits it or the agent asks again, the user must
    still read why the federator leaves it there, not only the member's words."""
    note = _kept_note(cluster)
    return f"{new}{note}" if old.endswith(note) and new and not new.endswith(note) else new


__all__ = ["Ask", "Moves", "is_kept", "kept_message", "moved_reason", "room_for", "still_kept"]
