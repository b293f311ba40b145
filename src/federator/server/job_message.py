"""A placed job's message: what its placements say, and which of its clusters the federator cannot hear.

A job on a Partitioned cluster keeps its placement (it may still be running
there) and gets no new work until the cluster is back or Lost. Without a word
on the job it showed `Placed` or `Running` with an empty message for minutes,
while only the cluster registry (`kubectl get mc`) said why nothing happened.

The message is derived here, in one place, and kept in `Job.message`: that
field is what every view shows (gRPC Get/List/Watch and so `federator get`
and `list`; FederatedJob `.status.message` through the Kubernetes job store),
and writing it through the journal is what reaches them all. So the text says
*since when* and *until when* in wall-clock time, not "for 40 s": a stored
message must stay true without being rewritten every second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from federator.model import ClusterState, Job, JobPhase, Reason, ReasonCode, shortfall
from federator.server.clusters import FAILOVER_ANNOTATION, ClusterRecord
from federator.server.leases import away_since
from federator.server.member_health import unreachable_note
from federator.timestamps import utc_seconds

if TYPE_CHECKING:
    from federator.server.federator import Federator

RESYNC = "resync"  # a placeholder message of re-syncs by older agents: never shown


def placements_message(job: Job, *, waiting: bool = True) -> str:
    """What the placements in the job's phase say (Running: the running ones; Placed: what they wait for,
    in the members' words, e.g. Kueue's reason; each named by its cluster when the job has several, as
    "member-a: 2 replicas running; member-b: 2 replicas running, 0 ready"), never a Placed one left behind.
    A Placed job whose members said nothing yet says where and since when it waits to start: an empty message
    hid a member that took a job and never started it (server/start_deadline.py moves it in the end)."""
    several = len({p.cluster for p in job.placements}) > 1  # a spread job: say whose words are whose
    said = "; ".join(f"{p.cluster}: {p.message}" if several and p.cluster not in p.message else p.message
                     for p in job.placements if p.phase is job.phase and p.message and p.message != RESYNC)
    silent = sorted({p.cluster for p in job.placements if p.phase is JobPhase.PLACED})
    if job.phase is JobPhase.RUNNING and silent:  # scaled up: the new part is not started yet, the rest serves
        more = sum(p.replicas for p in job.placements if p.phase is JobPhase.PLACED)
        return "; ".join(part for part in (said, f"{more} more replica{'s' if more != 1 else ''} placed on "
                                                 f"{', '.join(silent)}, not started yet") if part)
    if said or not waiting or job.phase is not JobPhase.PLACED:
        return said
    if not silent or not job.placed_at:
        return ""
    return f"placed on {', '.join(silent)} at {utc_seconds(job.placed_at)}; not started yet"


def cluster_note(rec: ClusterRecord, *, lost_after: float, keep: bool) -> str:
    """Why a placement on a cluster that is not Ready makes no progress, and what happens next ("" if Ready)."""
    since = utc_seconds(rec.partitioned_at)
    # A cluster whose agent has not connected since this federator started (`clusters.awaited`) was last heard
    # of before; the clock to Lost restarted with the federator, so say that, not that the agent fell silent then.
    restarted = not rec.session
    unreachable = unreachable_note(rec)  # its agent cannot reach the member (server/member_health.py)
    if rec.state is ClusterState.PARTITIONED:
        then = ("the job stays there even then (failover: keep)" if keep
                else "when the job is placed again")
        if unreachable:
            return (f"{unreachable}; the replicas' state there is unknown; no new work there until it answers, "
                    f"or until it is Lost at "
                    f"{utc_seconds(rec.partitioned_at + lost_after)} ({lost_after:g} s on), {then}")
        why = "its agent has not reported since this federator started" if restarted else "no word from its agent"
        return (f"{rec.name} Partitioned since {since} ({why}); waiting for it to come back, "
                f"or until it is Lost at {utc_seconds(away_since(rec) + lost_after)} ({lost_after:g} s on), {then}")
    if rec.state is ClusterState.LOST:
        then = "the job waits for it to come back (failover: keep)" if keep else "the job is placed again"
        if unreachable:
            return f"{rec.name} Lost after {lost_after:g} s Partitioned: {unreachable}; {then}"
        why = "its agent has not reported since this federator started at" if restarted \
            else "no word from its agent since"
        return f"{rec.name} Lost ({why} {since}); {then}"
    return ""


def job_message(job: Job, clusters: Mapping[str, ClusterRecord], *, lost_after: float) -> str:
    """A placed job's message: how many replicas it is short and why (a spread job that lost a part, server/
    partial.py), a note per cluster of its live placements that is not Ready (by name, so a job spread over
    clusters names the silent ones), then what its placements say."""
    keep = job.spec.annotation(FAILOVER_ANNOTATION, "replace") == "keep"
    holding = sorted({p.cluster for p in job.placements if p.phase.is_active})
    notes = [note for name in holding if name in clusters
             if (note := cluster_note(clusters[name], lost_after=lost_after, keep=keep))]
    return "; ".join(part for part in (shortfall(job), *notes, placements_message(job, waiting=not notes)) if part)


def _noted(rec: ClusterRecord) -> tuple[ClusterState, float, float]:
    """What of a cluster its jobs' messages follow: its state, since when its agent cannot reach the member (0: it
    can), and when it last turned Ready. Not the agent's words: those may change with every report, and restating
    every job there each time would cost a store write per job per report; the words of when it began stay. When it
    turned Ready tells a cluster that went Partitioned and back within one turn (a federator resumed after a stop:
    the re-sync's updates, read while it was Partitioned, wrote the note, and the turn saw Ready before and after;
    chaos QA F4) from one that never left."""
    return rec.state, rec.unreachable_since if unreachable_note(rec) else 0.0, rec.ready_at


class ClusterNotes:
    """Restates the messages of the jobs on a cluster when its state changes (Ready, Partitioned, Lost), or its
    agent's word on the member's API does.

    Called once per turn of the loop after the leases are checked, so every way a cluster changes state
    (stream dropped, lease ran out, first report, Lost, expected back after a restart) is caught in one
    place, and only a change of state costs a pass over the jobs."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        # The state each cluster's jobs' messages last reflected, and what its agent said of the member's API.
        self._noted: dict[str, tuple[ClusterState, float, float]] = {}

    def gone(self, cluster: str) -> None:
        """A forgotten cluster (server/leases.py); it held no placement, so no message names it."""
        self._noted.pop(cluster, None)

    def refresh(self) -> None:
        changed = [name for name, rec in self.fed.clusters.items()  # one first seen Ready: nothing to restate
                   if not self._expected_back(rec)
                   and _noted(rec) != self._noted.setdefault(name, (ClusterState.READY, 0.0, rec.ready_at))]
        if not changed:
            return
        for name in changed:
            self._noted[name] = _noted(self.fed.clusters[name])
            self.fed.cycles.refresh.cluster_changed(name)  # parked jobs' reasons may name it (reason_refresh.py)
        on = set(changed)
        restated = []
        for job in self.fed.jobs.values():
            if job.phase not in (JobPhase.PLACED, JobPhase.RUNNING):
                continue
            if not any(p.cluster in on and p.phase.is_active for p in job.placements):
                continue
            message = job_message(job, self.fed.clusters, lost_after=self.fed.lost_after_seconds)
            if message != job.message:
                job.message = message
                restated.append(job)
        if restated:
            self.fed.journal.write_or_owe(restated, then=self.fed.notify)  # a full disk delays it, never stops us

    def _expected_back(self, rec: ClusterRecord) -> bool:
        """A cluster expected back after this federator's start whose agent has not reported yet, while the start
        waits for such clusters (server/settle.py): its jobs' messages are not restated yet. Restated at once, every
        job running there was written twice for nothing, "Partitioned since ... (its agent has not reported since
        this federator started)", then its old message again a few seconds later when the agent re-synced: at
        1,300 FederatedJobs hundreds of status writes on every restart or failover, with new FederatedJobs'
        submits queued behind them (QA kubescaleqa62 H1). Once the wait is over, one still away is restated."""
        return rec.capacity is None and rec.state is ClusterState.PARTITIONED and not self.fed.settling.settled


__all__ = ["INTERRUPTIONS", "THEN", "ClusterNotes", "cluster_note", "job_message", "keep_interruption",
           "placements_message", "preempted_message"]


INTERRUPTIONS = (ReasonCode.PREEMPTED, ReasonCode.DRAINED, ReasonCode.FAILED_EARLY, ReasonCode.FAILED_RESTARTING)
"""Codes that say what happened to a job that ran, not what it waits for: kept until it is placed again."""
THEN = "; then: "
"""What joins an interruption to the wait after it: "preempted on west-1 ..., at T; then: InsufficientCpu: ..."."""
# The notes 0.12.0 ended a wait's message with (stored reasons of jobs still waiting when 0.13.0 starts)
PREEMPTED_MARK = " (preempted at "
DRAINED_MARK = " (drained: "


def preempted_message(said: str, at: float) -> str:
    """A preempted job's reason (`Preempted`): the scheduler's words (where, and for whom: the preemptor named to
    its own queue only) and when, in wall-clock time, as a stored message must stay true."""
    return f"{said}, at {utc_seconds(at)}"


def keep_interruption(old: Reason | None, new: Reason) -> Reason:
    """`new`, the reason a cycle gives a waiting job, as the job shows it: after an interruption (`old` is
    `Preempted`, `Drained` or `FailedEarly`), that code and its words first, then the wait's code and message
    ("preempted on west-1 for ..., at T; then: InsufficientAccelerators: 0/3 clusters fit: ..."), until the job is
    placed again (a placement clears the reason) or interrupted anew. `never` is the wait's.

    Why: the next cycle replaced a victim's `Preempted` with its wait's code, and 0.12.0 ended the message with
    "(preempted at ...)", where `get jobs`' REASON column, cut at about 100 characters, never showed it, and a
    script filtering `pendingReason.code == "Preempted"` found nothing a second after the preemption (outside HPC
    QA, H13; the same for `FailedEarly`, H6). The code stays what the message says first. What places, parks and
    counts a job reads the cycle's own reason, never this one (scheduling.commit_pending, reason_refresh.py)."""
    if old is None or new.code in INTERRUPTIONS:
        return new
    lead = _interruption(old)
    if lead is None:
        return new
    code, said = lead
    return Reason(code, f"{said}{THEN}{new.code}: {new.message}", never=new.never)


def _interruption(old: Reason) -> tuple[ReasonCode, str] | None:
    """The interruption a job's last reason tells first (its code and words), if any; 0.12.0's trailing notes
    are read too, so a job preempted before an upgrade still says so."""
    if old.code in INTERRUPTIONS:
        return old.code, old.message.split(THEN, 1)[0]
    at = max(old.message.rfind(PREEMPTED_MARK), old.message.rfind(DRAINED_MARK))
    if at < 0 or not old.message.endswith(")"):
        return None
    note = old.message[at + 2:-1]  # "preempted at T for X" or "drained: cluster a drained by ..."
    if note.startswith("drained: "):
        return ReasonCode.DRAINED, note.removeprefix("drained: ")
    return ReasonCode.PREEMPTED, note
