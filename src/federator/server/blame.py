"""Which early failures are evidence against their cluster: those whose job then ran elsewhere.

Why: outside QA's soak (finding 1) quarantined all 9 healthy clusters in 4 minutes. Ordinary tenant jobs that
crash at start (1% of jobs, 4 users) failed early, were placed once more elsewhere (server/early_failures.py) and
failed there too; each failure counted against the cluster it happened on, so one crashing job weighed against
two clusters, and with several tenants "at least two owners" protected nobody. A job that fails early wherever it
runs is the job's fault; a cluster is to blame only when the same job, placed once more elsewhere, runs there.

The design: an early failure is held here as a pending blame on its job until the job's one more placement shows
which it was:
- it turns Running on another cluster and has run there --early-failure-seconds (it did not fail early), or it
  Succeeds, or it fails only after that time: the job runs, the first cluster is to blame (confirmed);
- it fails early too: the job's fault; neither failure counts (the second never becomes a blame);
- it is cancelled before it ran that long, or nothing shows either way within LAPSE_WINDOWS: no evidence.
Chosen over counting at once and taking the count back when the retry fails: a crashing job's retry fails a
second or two after its first failure, so a burst of several owners' crashing jobs reached the threshold before any
retry could take a count back (the QA repro quarantined 2 of 3 clusters within 3 s). Waiting costs time only: a
member that fails every job is quarantined --early-failure-seconds later than before, and each job it fails in
the meantime still runs elsewhere (its once-more placement).

A job with no once-more placement (`federator.io/failover: keep`, or a failure of its one more placement) shows
nothing about the cluster and is no blame: a member that fails only `keep` jobs is not quarantined; those jobs
fail with its words, which the owner sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from federator.security.authz import Submitter

KEPT_BLAMES = 4_096
"""Pending blames kept at most (the oldest go first): a bound on memory whatever the members report."""
SWEEP_SECONDS = 1.0
"""The pending blames are looked over at most this often: the quarantine is asked for every placement a cycle
commits, and a second more before a blame counts changes nothing."""
LAPSE_WINDOWS = 2
"""A pending blame its job's once-more placement has not confirmed within this many --quarantine-window plus
--early-failure-seconds of the failure lapses: evidence that old says nothing about the cluster now."""


@dataclass(frozen=True, slots=True)
class Blame:
    """An early failure on `cluster` of `owner`'s job at `failed_at`; `ran_since`: when the job's once-more
    placement turned Running on another cluster (0: not yet), `witness` that cluster (the one whose word, Running
    or Succeeded, makes the failure evidence); `groups`: the owner's tenancy groups, its organisation."""

    cluster: str
    owner: Submitter
    failed_at: float
    ran_since: float = 0.0
    groups: frozenset[str] = frozenset()
    witness: str = ""


class Blames:
    """The pending blames, by job; see the module docstring. Pure bookkeeping: the caller counts what it confirms."""

    def __init__(self, *, seconds: float, window: float) -> None:
        self.seconds = seconds  # --early-failure-seconds: how long the once-more placement must run
        self.lapse = LAPSE_WINDOWS * (window + seconds)
        self._pending: dict[str, Blame] = {}  # job id -> blame, oldest first
        self._swept_at = -math.inf

    def failed_early(self, job_id: str, cluster: str, owner: Submitter, now: float,
                     groups: frozenset[str] = frozenset()) -> None:
        """A job's first early failure: pending until its once-more placement shows whose fault it was."""
        self._pending.pop(job_id, None)
        self._pending[job_id] = Blame(cluster, owner, now, groups=groups)
        while len(self._pending) > KEPT_BLAMES:
            del self._pending[next(iter(self._pending))]

    def job_at_fault(self, job_id: str) -> Blame | None:
        """The job's once-more placement failed early too: the blame is dropped (returned, for the log)."""
        return self._pending.pop(job_id, None)

    def ran(self, job_id: str, cluster: str, now: float) -> None:
        """A placement of the job turned Running on `cluster`."""
        blame = self._pending.get(job_id)
        if blame is not None and cluster != blame.cluster and not blame.ran_since:
            self._pending[job_id] = replace(blame, ran_since=now, witness=cluster)

    def ended(self, job_id: str, cluster: str, *, succeeded: bool, now: float) -> Blame | None:
        """A placement of the job on `cluster` ended other than by an early failure: the blame it confirms (it
        succeeded, or it had run --early-failure-seconds), else None (dropped when it ran less)."""
        blame = self._pending.get(job_id)
        if blame is None or cluster == blame.cluster:
            return None
        del self._pending[job_id]
        return replace(blame, witness=cluster) if succeeded or self._ran_long_enough(blame, now) else None

    def confirmed(self, now: float) -> list[Blame]:
        """The blames whose job has now run --early-failure-seconds elsewhere (removed here); lapsed ones go.
        At most one look every SWEEP_SECONDS."""
        if not self._pending or now - self._swept_at < SWEEP_SECONDS:
            return []
        self._swept_at = now
        out: list[Blame] = []
        for job_id, blame in list(self._pending.items()):
            if self._ran_long_enough(blame, now):
                out.append(blame)
                del self._pending[job_id]
            elif now - blame.failed_at > self.lapse:
                del self._pending[job_id]
        return out

    def forget(self, cluster: str) -> None:
        """The cluster left the registry: no blame on it is kept."""
        for job_id in [j for j, b in self._pending.items() if b.cluster == cluster]:
            del self._pending[job_id]

    def _ran_long_enough(self, blame: Blame, now: float) -> bool:
        return bool(blame.ran_since) and now - blame.ran_since >= self.seconds


__all__ = ["KEPT_BLAMES", "LAPSE_WINDOWS", "SWEEP_SECONDS", "Blame", "Blames"]
