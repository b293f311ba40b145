"""Where each job ran, in the audit log: its placements made and ended, and its end (outside compliance QA, C3).

Why here and not at each path that places or moves a job: placements are made by the cycle, and ended by a
re-queue (a Lost member, a preemption, an early failure, a start deadline), a drain, a rebalance, a surge, a
shrink, a scale-down, a cancel; a line written at each would be forgotten by the next path added. Every change
of a job is handed to the federator's journal on the event loop, in order (store/group_commit.py), so this
observer compares each job handed with what it last saw of it, as the usage meter does:

- `place`: a placement new to the job (its Launch, with the job's spec, goes to that cluster): the job, its
  owner and queue, the placement's id, cluster, region, provider and replicas, and `from`: where the job's
  placements that ended since its last `place` ran (a re-queue's or a move's origin; empty for a first placement).
- `unplace`: a placement that left its job, or ended, while the job went on: its cluster, region, provider, its
  phase and `reason` (the re-queue's reason code, e.g. `Preempted`, `Drained`, `FailedEarly`, or for a placement
  ended in place, e.g. moved by the rebalancer, its phase) and the message saying why.
- `finish`: the job ended: its phase, when (`finished_at`) and the message.

The `submit` line (server/job_service.py) carries the promise these lines are read against (`promised`): the job's
`allowed_regions` and `preferred_regions`, and its queue's fence as resolved when it was submitted
(`queue_allowed_regions`: the policy's `allowedRegions`, or the Queue object's), with `user_region` and
`max_latency_ms` when the job sets a latency budget.

Each line has no identity (the federator's own doing: who asked for a cancel is on the `cancel` line) and
result `accepted`. The cost is a dict lookup per job written and an encoded line per placement made or ended;
the AuditLog's writer thread does the writing (security/audit.py), never the event loop. Memory: the placement
ids and clusters of the jobs not yet ended. A job ended when loaded, or handed again after its end (a restated
message, retention's removal), writes nothing. After a restart the jobs as loaded are the baseline: what
changed while the federator was down is not known to it, so not audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from federator.model import Job, JobId, JobSpec, Placement, PlacementId
from federator.security.audit import AuditLog
from federator.security.authz import owner_of
from federator.timestamps import utc_micro

if TYPE_CHECKING:
    from federator.server.federator import Federator


@dataclass(frozen=True, slots=True)
class _Seen:
    """A placement as last seen: where it is, and whether it had ended."""

    cluster: str
    region: str
    replicas: int
    ended: bool


class AuditTrail:
    """Compares each job handed to the journal with what it last saw of it; writes `place`, `unplace`, `finish`."""

    def __init__(self, audit: AuditLog, *, provider_of: Callable[[str], str]) -> None:
        self.audit = audit
        self.provider_of = provider_of  # cluster -> provider, as the usage meter names it
        self._seen: dict[JobId, dict[PlacementId, _Seen]] = {}
        self._left: dict[JobId, list[str]] = {}  # "cluster (region)" of placements ended since the job's last place

    def load(self, jobs: Iterable[Job]) -> None:
        """The jobs as loaded at start: the baseline, audited by nothing."""
        for job in jobs:
            if not job.phase.is_terminal:
                self._seen[job.job_id] = {p.placement_id: _seen(p) for p in job.placements}

    def observe(self, jobs: Iterable[Job]) -> None:
        """Jobs as just handed to the journal: a line for each placement made or ended, and for each end."""
        for job in jobs:
            before = self._seen.get(job.job_id)
            if before is None:
                if job.phase.is_terminal:
                    continue  # ended before we knew it (a restart), or handed again after its end
                before = {}
            now = {p.placement_id: p for p in job.placements}
            for pid, seen in before.items():
                p = now.get(pid)
                if not seen.ended and (p is None or p.phase.is_terminal) and not job.phase.is_terminal:
                    self._unplace(job, pid, seen, p)
            for pid, p in now.items():
                if pid not in before:
                    self._place(job, p)
            if job.phase.is_terminal:
                self._finish(job, before)
                self._seen.pop(job.job_id, None)
                self._left.pop(job.job_id, None)
            else:
                self._seen[job.job_id] = {pid: _seen(p) for pid, p in now.items()}

    def _job(self, job: Job, kind: str) -> dict[str, Any]:
        owner, _ = owner_of(job.spec)
        return {"kind": kind, "namespace": job.spec.namespace, "name": job.spec.name, "queue": job.spec.queue,
                "owner": owner, "job_id": job.job_id}

    def _place(self, job: Job, p: Placement) -> None:
        obj = {**self._job(job, "Placement"), "placement_id": p.placement_id, "cluster": p.cluster,
               "region": p.region, "provider": self.provider_of(p.cluster), "replicas": p.replicas,
               "from": self._left.pop(job.job_id, [])}
        self.audit.record("place", identity=None, obj=obj, result="accepted")

    def _unplace(self, job: Job, pid: PlacementId, seen: _Seen, p: Placement | None) -> None:
        if p is None:  # dropped by a re-queue: the job's pending reason says why
            reason = job.pending_reason
            code, phase = (reason.code.value if reason is not None else ""), "Superseded"
            message = reason.message if reason is not None else job.message
        else:  # ended in place while the job goes on: a move, a scale-down, a shrink, a part re-placed
            code, phase, message = p.phase.value, p.phase.value, p.message
        obj = {**self._job(job, "Placement"), "placement_id": pid, "cluster": seen.cluster, "region": seen.region,
               "provider": self.provider_of(seen.cluster), "replicas": seen.replicas, "phase": phase,
               "reason": code}
        self._left.setdefault(job.job_id, []).append(f"{seen.cluster} ({seen.region})")
        self.audit.record("unplace", identity=None, obj=obj, result="accepted", message=message)

    def _finish(self, job: Job, before: dict[PlacementId, _Seen]) -> None:
        ran = sorted({f"{p.cluster} ({p.region})" for p in job.placements}
                     | {f"{s.cluster} ({s.region})" for s in before.values() if not s.ended})
        ended = utc_micro(job.finished_at) if job.finished_at else ""
        obj = {**self._job(job, "Job"), "phase": job.phase.value, "finished_at": ended, "on": ran}
        self.audit.record("finish", identity=None, obj=obj, result="accepted", message=job.message)


def promised(spec: JobSpec, fence: tuple[str, ...]) -> dict[str, Any]:
    """The regions a job was promised at submit, for its `submit` audit line: its own hard and preferred regions,
    its queue's fence (`fence`, residency.queue_fence), and its latency budget if it has one. [] = none given."""
    out: dict[str, Any] = {"allowed_regions": list(spec.allowed_regions),
                           "preferred_regions": list(spec.preferred_regions), "queue_allowed_regions": list(fence)}
    if spec.max_latency_ms:
        out |= {"user_region": spec.user_region, "max_latency_ms": spec.max_latency_ms}
    return out


def _seen(p: Placement) -> _Seen:
    return _Seen(p.cluster, p.region, p.replicas, p.phase.is_terminal)


def attach_trail(fed: Federator, trail: AuditTrail) -> None:
    """Audit where a federator's jobs run from now on (after the usage meter's `attach`, before it serves)."""
    trail.load(fed.jobs.values())
    fed.journal.observers.append(trail.observe)


__all__ = ["AuditTrail", "attach_trail", "promised"]
