"""Running work outside the regions its job and queue now allow: said, counted, never left silent.

Why: a job's spec.regions.allowed never changes, and the scheduler never places outside it or its queue's
allowedRegions (scheduler/residency.py). But a queue's fence may narrow while the queue's jobs run: a policy
reload, a Queue object edited. A reload changes nothing already accepted (server/policy_use.py), and stopping
an organisation's running work on an operator's edit (a typo included) would be worse than the edit; so the
placements outside are reported, not stopped (outside compliance QA, C1):

- a WARNING per job when the fence changes (`say_outside`, from server/policy_use.py and the Queue controller)
  and when the federator starts (server/app.py: a fence narrowed while it was down),
  naming the job, its clusters and regions, and the fence, with what to do (`federator cancel`, or a drain of
  the cluster: the job is placed again inside);
- the gauge `federator_jobs_outside_allowed_regions{queue}` (server/state_sample.py), for an alert;
- `federator get jobs -o wide` shows each job's REGION, and `get job -o yaml` its spec.regions.allowed.

Nothing new is placed outside meanwhile: a lost part, a drain or a scale-up is placed inside, or waits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from federator.model import Job
from federator.scheduler import SchedulerConfig
from federator.scheduler.residency import permitted, queue_fence

log = logging.getLogger("federator.server")


def outside(job: Job, config: SchedulerConfig) -> list[tuple[str, str]]:
    """(cluster, region) of each of the job's live placements in a region its spec and queue do not allow."""
    if job.phase.is_terminal:
        return []
    allowed = permitted(job.spec.allowed_regions, queue_fence(config, job.spec.queue))
    if allowed is None:
        return []
    return [(p.cluster, p.region) for p in job.placements if p.phase.is_active and p.region not in allowed]


def counts(jobs: Iterable[Job], config: SchedulerConfig) -> dict[str, int]:
    """Queue -> its unfinished jobs with a live placement outside the regions allowed (the gauge's values)."""
    if not any(q.allowed_regions for q in (*config.queues.values(), config.default_queue)):
        return {}  # a job's own list is never broken: only a queue's fence can leave work outside
    return dict(Counter(job.spec.queue for job in jobs if outside(job, config)))


def say_outside(jobs: Iterable[Job], config: SchedulerConfig) -> int:
    """A WARNING for each job running outside what its queue's fence now allows; how many jobs."""
    said = 0
    for job in jobs:
        where = outside(job, config)
        if not where:
            continue
        said += 1
        fence = queue_fence(config, job.spec.queue)
        log.warning("job %s (queue %s) runs outside the regions it may now run in (%s, its queue's allowedRegions): "
                    "%s; it runs on, and is never placed there again. To move it: federator cancel %s, or drain "
                    "the cluster", job.job_id, job.spec.queue, ", ".join(fence) or "any",
                    ", ".join(f"{c} ({r})" for c, r in where), job.job_id)
    return said


__all__ = ["counts", "outside", "say_outside"]
