"""Which cluster just refused which job, so the next placement tries elsewhere first.

A cluster refuses a placement when its agent would not launch it (the gang does
not fit after all) or stopped it on its own (its gang timeout: not every pod was
bound in time). Placing the job straight back there would most likely fail the
same way, so for `cooldown` seconds the scheduler is told to avoid that cluster
for that job (`PlacementRequest.avoid_clusters`, filter `NotRecentlyRefused`).
If no other cluster is Ready, nothing is avoided: elsewhere only if it can.
Memory only: after a federator restart a job may be tried once more where it was
refused, which costs one more timeout, never a job.
"""

from __future__ import annotations

from collections.abc import Iterable

from federator.model import JobId

DEFAULT_REFUSAL_COOLDOWN_SECONDS = 300.0


class RecentRefusals:
    """job id -> cluster -> when it refused; entries older than the cooldown are dropped as they are read."""

    def __init__(self, cooldown: float = DEFAULT_REFUSAL_COOLDOWN_SECONDS) -> None:
        self.cooldown = cooldown
        self._by_job: dict[JobId, dict[str, float]] = {}

    def note(self, job_id: JobId, cluster: str, now: float) -> None:
        if self.cooldown > 0:
            self._by_job.setdefault(job_id, {})[cluster] = now

    def avoided(self, job_id: JobId, now: float, ready: Iterable[str]) -> tuple[str, ...]:
        """Clusters this job should not go to now; empty when that would leave it no Ready cluster."""
        recent = self._by_job.get(job_id)
        if not recent:
            return ()
        for cluster, at in list(recent.items()):
            if now - at >= self.cooldown:
                del recent[cluster]
        if not recent:
            del self._by_job[job_id]
            return ()
        if not set(ready) - set(recent):
            return ()
        return tuple(sorted(recent))

    def remembers(self, job_id: JobId) -> bool:
        """Some cluster refused this job within the cooldown (as of the last `avoided`)."""
        return job_id in self._by_job

    def forget(self, job_id: JobId) -> None:
        self._by_job.pop(job_id, None)


__all__ = ["DEFAULT_REFUSAL_COOLDOWN_SECONDS", "RecentRefusals"]
