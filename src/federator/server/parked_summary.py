"""The parked jobs of each queue in line, kept as jobs are parked and brought back: what a cycle counts of them.

Why: a waiting job's reason tells how many waiting jobs of its queue go before its owner's (scheduler/
owner_share.py), and most of a backlog is parked (parking.py), out of the cycle. A cycle over one group a report
brought back counted that cycle's few jobs: "1 waiting job ... goes before its owner's" behind 13, a rewrite of the
group and one back at the next full cycle. So the lot keeps, per queue, priority and owner, the parked jobs that
wait in line (scheduler/parked_line.in_line) by submission, and each cycle's plan takes a frozen summary of them
(scheduler/parked_line.ParkedQueue).

Cost: parking or bringing back a job is a bisect and an insert into its owner's sorted list (a memmove, C speed);
a plan copies only the lists that changed since the last plan into tuples, and reuses the rest, so a backlog that
stays parked costs a plan one dict per queue, not a walk over its jobs.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict

from federator.model import JobId, JobSpec, Reason
from federator.scheduler.parked_line import ParkedQueue, Queued, in_line

_Key = tuple[str, int, str]  # (queue, priority, owner)


class ParkedSummary:
    """Per queue, priority and owner: the parked jobs in line, sorted by (submitted_at, job id)."""

    def __init__(self) -> None:
        self._lines: dict[_Key, list[Queued]] = {}
        self._where: dict[JobId, tuple[_Key, Queued]] = {}
        self._frozen: dict[_Key, tuple[Queued, ...]] = {}  # the lines as the last plan took them
        self._changed: set[_Key] = set()
        self._summary: dict[str, ParkedQueue] = {}

    def __len__(self) -> int:
        return len(self._where)

    def add(self, job_id: JobId, spec: JobSpec, reason: Reason, submitted_at: float) -> None:
        """A job was parked with this reason: counted if it waits in its queue's line (room or quota)."""
        self.remove(job_id)
        if not in_line(reason):
            return
        key, at = (spec.queue, spec.priority, spec.owner), (submitted_at, job_id)
        insort(self._lines.setdefault(key, []), at)
        self._where[job_id] = (key, at)
        self._changed.add(key)

    def remove(self, job_id: JobId) -> None:
        """The job was brought back (or ended): no longer counted as parked."""
        where = self._where.pop(job_id, None)
        if where is None:
            return
        key, at = where
        line = self._lines[key]
        del line[bisect_left(line, at)]
        if not line:
            del self._lines[key]
        self._changed.add(key)

    def clear(self) -> None:
        self._changed.update(self._lines)
        self._lines.clear()
        self._where.clear()

    def summary(self) -> dict[str, ParkedQueue]:
        """Each queue's parked jobs in line, frozen (a cycle on another thread reads it while the loop goes on)."""
        if not self._changed:
            return self._summary
        for key in self._changed:
            line = self._lines.get(key)
            if line is None:
                self._frozen.pop(key, None)
            else:
                self._frozen[key] = tuple(line)
        self._changed.clear()
        queues: dict[str, dict[int, dict[str, tuple[Queued, ...]]]] = defaultdict(lambda: defaultdict(dict))
        for (queue, priority, owner), queued in self._frozen.items():
            queues[queue][priority][owner] = queued
        self._summary = {q: ParkedQueue({p: dict(owners) for p, owners in levels.items()})
                         for q, levels in queues.items()}
        return self._summary


__all__ = ["ParkedSummary"]
