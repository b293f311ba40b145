"""Which cluster just refused which job, so the next placement tries elsewhere first.

A cluster refuses a placement when its agent would not launch it (the gang does
not fit after all) or stopped it on its own (its gang timeout: not every pod was
bound in time). Placing the job straight back there would most likely fail the
same way, so for a while the scheduler is told to avoid that cluster for that
job (`PlacementRequest.avoid_clusters`, filter `NotRecentlyRefused`): 30 s after
a first refusal, twice as long after each one more, at most `cooldown`.
That holds when no other cluster is Ready too: before, nothing was avoided then,
and a cluster that refused at launch (an admission webhook, its pod security
level, a missing namespace) was sent the job again by the next cycle, a loop of
placements and refusals dozens of generations deep within seconds. Now the
only cluster is retried with the same back-off, as a kubelet restarts a
crashing container.
Memory only: after a federator restart a job may be tried once more where it was
refused, which costs one more timeout, never a job. A cluster a job failed on is
different: its next run there may fail too and spend a restart of the job's
budget, so a restart notes the job's last failure again from the store
(server/restored_cooldowns.py, new59 N7).
"""

from __future__ import annotations

import re
from dataclasses import replace

from federator.model import JobId, Reason
from federator.scheduler.plugins import recently_refused

WHY_CHARS = 400
"""Of a cluster's refusal, in the job's pending reason (the Event has it whole). A member's words come after
what it refused and the value at fault (`the member cluster refused the JobSet: admission webhook "..." denied
the request: spec.replicatedJobs[1].name: Invalid value: "<a 58-character name>": JobSet name is too long,
...`), so 160 cut them off before the reason; 400 keeps them, and two clusters' refusals, within the 1024
characters of an Event's message."""
QUOTED_CHARS = 24
"""Of a quoted value over twice as long in a refusal (the API server's `Invalid value: "..."`, most often the
object's own long name): its start says which it was, its whole would push the member's reason out."""
_LONG_QUOTED = re.compile(rf'"([^"\s]{{{2 * QUOTED_CHARS},}})"')  # a name, a value: no spaces


def brief(why: str) -> str:
    """A cluster's refusal as the job's pending reason shows it: long quoted values shortened, then cut."""
    why = _LONG_QUOTED.sub(lambda m: f'"{m.group(1)[:QUOTED_CHARS]}..."', why)
    return why if len(why) <= WHY_CHARS else why[:WHY_CHARS] + "..."
STOPPED_CHARS = 800
"""Of the message of a placement its cluster stopped, in the job's re-queue reason and its Requeued Event. The
member's own words (Kueue's quota arithmetic, the scheduler's reason pods stayed unbound) end where the
cause is named, so they are kept whole up to the length an Event's message holds with room to spare."""
DEFAULT_MAX_REFUSALS = 10
"""Refusals of a job in a row, with no placement of it Running since, before it fails (`given_up`): with the
back-off (30 s, doubling to 5 minutes) about half an hour of trying; a member that is merely full turns a job away
a few times, one that cannot take the workload every time."""
DEFAULT_REFUSAL_COOLDOWN_SECONDS = 300.0
"""The longest a cluster is avoided for one job after it refused it."""
FIRST_REFUSAL_SECONDS = 30.0
"""How long a cluster is avoided after its first refusal of a job; doubled with each refusal after it, up to
the cooldown. A job pinned to a model only one cluster has waits this long, not the whole cooldown, when that
cluster refused it for a passing reason (a missing namespace the operator then made, an admission webhook
that was down); a cluster that keeps refusing is tried less and less often."""


REFUSED = "refused this job"
"""What a cluster did, in a job's reason, when its agent would not launch it or stopped it on its own."""
FAILED_EARLY = "saw this job fail early"
"""... when the job failed there within --early-failure-seconds: the cluster ran it, it refused nothing (outside
QA's Go agent, F5: a provider read that its cluster had turned the job away)."""
NOT_STARTED = "held this job without starting it"
"""... when it held the placement past --start-timeout without starting it."""

# How an agent words the Cancelled of a placement it fenced (agent.proto, obligation 7): not a refusal.
FENCED_PREFIX = "fenced by the agent of "

class RecentRefusals:
    """job id -> cluster -> (avoided until, refusals so far, its last why); kept while the job lives (`forget`)."""

    def __init__(self, cooldown: float = DEFAULT_REFUSAL_COOLDOWN_SECONDS,
                 first: float = FIRST_REFUSAL_SECONDS, limit: int = DEFAULT_MAX_REFUSALS) -> None:
        self.cooldown = cooldown
        self.first = first
        self.limit = limit  # refusals in a row, none run since, before the job fails (`given_up`); 0: never
        self._by_job: dict[JobId, dict[str, tuple[float, int, str, str]]] = {}
        self._avoiding: set[JobId] = set()  # jobs with a cluster still avoided, as of the last note or avoided
        self._streak: dict[JobId, tuple[int, str, str]] = {}  # refusals since the job last ran, the last's cluster, why
        # Members' APIs that called the job invalid since it last ran (server/invalid_specs.py): cluster ->
        # (its provider, the API's words); and the verdict of a job that fails for it at the next turn.
        self._invalid: dict[JobId, dict[str, tuple[str, str]]] = {}
        self._condemned: dict[JobId, Reason] = {}

    def note(self, job_id: JobId, cluster: str, now: float, why: str = "", *, did: str = REFUSED,
             counted: bool = False) -> None:
        """The cluster turned the job away (`did`: what it did, as the job's reason says it: it refused it, failed
        it soon after its start, did not start it); `why`: its words. `counted`: a refusal of the job itself (its
        agent would not launch it, or stopped it before it ran), which counts toward `limit`."""
        if counted and not why.startswith(FENCED_PREFIX):
            times, _, _ = self._streak.get(job_id, (0, "", ""))
            self._streak[job_id] = (times + 1, cluster, brief(why))
        if self.cooldown <= 0 or why.startswith(FENCED_PREFIX):
            # A fence is the agent stopping everything it holds after losing the federator, not the cluster
            # turning this job away: kept off the cluster, a spread job waited 30 s more after a federator
            # restart, its reason reading as if the region could host nothing (outside QA).
            return
        clusters = self._by_job.setdefault(job_id, {})
        _, before, said, _ = clusters.get(cluster, (0.0, 0, "", REFUSED))
        times = before + 1
        if why:  # the cluster's last word on it, for the job's pending reason
            said = brief(why)
        clusters[cluster] = (now + min(self.cooldown, self.first * 2 ** min(times - 1, 30)), times, said, did)
        self._avoiding.add(job_id)

    def avoided(self, job_id: JobId, now: float) -> tuple[str, ...]:
        """Clusters this job should not go to now, whether or not another cluster is Ready."""
        recent = self._by_job.get(job_id)
        if not recent:
            return ()
        avoid = {cluster for cluster, (until, _, _, _) in recent.items() if now < until}
        if not avoid:
            self._avoiding.discard(job_id)
            return ()
        return tuple(sorted(avoid))

    def remembers(self, job_id: JobId) -> bool:
        """Some cluster refused this job and is still avoided for it (as of the last `avoided`)."""
        return job_id in self._avoiding

    def explain(self, job_id: JobId, reason: Reason) -> Reason:
        """`reason` with each refusing cluster's why after its name: the scheduler says only that it refused."""
        message = reason.message
        for cluster, (_, _, why, did) in self._by_job.get(job_id, {}).items():
            if why or did != REFUSED:
                said = recently_refused(cluster)
                told = said.replace(f"{cluster} {REFUSED}", f"{cluster} {did}", 1)
                message = message.replace(said, f"{told} ({why})" if why else told, 1)
        return reason if message == reason.message else replace(reason, message=message)

    def ran(self, job_id: JobId) -> None:
        """A placement of the job turned Running: what refused it before was not the job (a full member, an
        eviction), and its count starts again; a member that called it invalid was contradicted (its answer
        counted as a refusal, nothing more)."""
        self._streak.pop(job_id, None)
        self._invalid.pop(job_id, None)
        self._condemned.pop(job_id, None)

    def called_invalid(self, job_id: JobId, cluster: str, provider: str, why: str) -> dict[str, tuple[str, str]]:
        """`cluster` (of `provider`) said its API refused the job's object as invalid (Ack.invalid), in `why`;
        every such word since the job last ran, by cluster. The caller also `note`s it as a refusal."""
        said = self._invalid.setdefault(job_id, {})
        said[cluster] = (provider, why[:STOPPED_CHARS])
        return dict(said)

    def condemn(self, job_id: JobId, reason: Reason) -> None:
        """Fail the job at the next scheduling turn (`given_up`) for `reason`, which stays its code."""
        self._condemned[job_id] = reason

    def condemned(self, job_id: JobId) -> Reason | None:
        """The reason a job fails for other than --max-refusals (its spec found invalid), if any."""
        return self._condemned.get(job_id)

    def given_up(self, job_id: JobId) -> str | None:
        """Why the job fails instead of being placed again, once `limit` refusals in a row left it never running:
        a workload no member will take (an image missing, a name the API server refuses, a nodeSelector no node
        has) was refused, placed again and refused with no end, holding accelerators on every try (outside QA,
        ML user, F2); or whose spec members' APIs found invalid (`condemn`); else None."""
        if job_id in self._condemned:
            return self._condemned[job_id].message
        times, cluster, why = self._streak.get(job_id, (0, "", ""))
        if not self.limit or times < self.limit:
            return None
        return (f"refused {times} times in a row without running, the last by {cluster}: {why or 'no reason'} "
                f"(--max-refusals {self.limit})")

    def forget(self, job_id: JobId) -> None:
        self._by_job.pop(job_id, None)
        self._avoiding.discard(job_id)
        self._streak.pop(job_id, None)
        self._invalid.pop(job_id, None)
        self._condemned.pop(job_id, None)


__all__ = ["DEFAULT_MAX_REFUSALS", "DEFAULT_REFUSAL_COOLDOWN_SECONDS", "FAILED_EARLY", "FIRST_REFUSAL_SECONDS",
           "NOT_STARTED", "REFUSED", "STOPPED_CHARS", "WHY_CHARS", "RecentRefusals", "brief"]
