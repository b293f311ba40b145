"""A placement its agent says a federator's Cancel stopped because its job ended, while this store holds that job
current: the job ends Cancelled, it is not placed again.

Why: after a restore of the job store from an older snapshot (a host cluster's etcd, a `--db` backup), a job that
was cancelled or whose FederatedJob was deleted since the snapshot is back as Running. Its agent, at its re-sync,
says the placement Cancelled (the end it keeps, agent/final_updates.py), which the federator read as a stop the
cluster made on its own (an eviction, the agent's fence), so it queued the job again: a training job its owner had
stopped restarted from scratch on another member, billed (outside QA, Kubernetes DR, K1). The agent says which
Cancel stopped it (JobUpdate.job_ended, echoing Cancel.job_ended), with that Cancel's seal (JobUpdate.cancel_seal,
server/seals.py): only a federator makes one, so the word is the federator's own; a store that holds the job current
has not ended it, so it is a store older than that Cancel. Its owner's last order was to stop it: the job is ended
Cancelled, in words that say why, its other placements cancelled (as that cancel did). A placement superseded,
preempted or moved carries no job_ended: its job is queued again as before. Nor does a job_ended without a valid
seal (an agent before 0.20.0, or a member that forged it to end a job placed on it and cancel its placements on
other providers' clusters: security QA secqa61 H1): the agent stream reads it as the cluster's own stop
(server/agent_service.py, `seals.job_ended`), counted against the cluster, never this branch.

In normal operation the branch is never taken: a job is stored ended before its Cancels go out, so the agent's
Cancelled update finds it ended (or gone) and changes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federator.model import JobPhase
from federator.server.orders import CancelOrder

if TYPE_CHECKING:
    from federator.model import Job, Placement
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")


def end_restored(fed: Federator, rec: ClusterRecord, job: Job, placement: Placement, message: str) -> None:
    """End `job` Cancelled: its placement on `rec`'s cluster was stopped by a Cancel that ended the job, which this
    store (restored from an older state) does not know of."""
    why = (f"cancelled: {rec.name} says placement {placement.placement_id} was stopped by a federator's cancel of "
           f"the job ({message or 'no reason kept'}), after the state this store holds (restored from an older "
           "snapshot?); not run again: delete it, or submit it again to run it")
    log.warning("job %s: %s", job.job_id, why)
    rec.acked.discard(placement.placement_id)
    placement.phase, placement.message = JobPhase.CANCELLED, message
    for p in job.placements:
        if not p.phase.is_terminal:
            fed.send(p.cluster, CancelOrder(p.placement_id, "job cancelled", job_ended=True))
            p.phase = JobPhase.CANCELLED
    fed._finish(job, JobPhase.CANCELLED, why[:1024], at=placement.ended_at or None)
    fed.metrics.placements.labels("restored_end").inc()
    fed.journal.write_or_owe([job], then=fed.notify)
    fed.wake()


__all__ = ["end_restored"]
