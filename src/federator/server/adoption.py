"""A running placement of a job the store holds Pending at an older generation becomes that job's placement again.

Why: after a restore of the job store (a host cluster's etcd restored from a snapshot, a `--db` from a backup), a
job that started after the snapshot comes back Pending at the generation it had then, while its member still runs
the placement it got since. That placement was held as an orphan for `--orphan-grace` and then cancelled: the job
waited for room its own running gang held ("waiting for 16 of 16 H100 to free"), and after the grace its run was
thrown away and started over (outside QA, Kubernetes DR, K8). The placement's id names whose it is: JOB.gGEN.CLUSTER
names the job (in Kubernetes mode the job id carries the FederatedJob's uid, so a deleted and re-created object of
the same name is another job) and a generation the store had not given yet. But an id is any agent's word: a member
named one of its own making for another tenant's Pending job and had it adopted, billed, past its room, its regions
and its dependencies (security QA secqa61 H2). What proves that this federator launched it there is the Launch's
seal its agent says back (JobUpdate.launch_seal, server/seals.py: over the id, job, generation and cluster, under a
key of the federator's serving key), so only a sealed placement is adopted: the job takes that generation and the
placement, in the phase its agent reports, and reads Placed or Running, is billed, and runs on; nothing is
cancelled or launched. The seal is judged when the update's phase is kept (`heard`), and `adopt` refuses an unsealed
one, logged, unless seals are not required (--insecure).

Only what can be told for sure is adopted, the rest stays an orphan (server/orphans.py):

- its agent said back the seal of that very Launch to this cluster (none: an agent before 0.20.0, a seal under a
  serving key since replaced, or a forged placement);
- the job is Pending, not held, and has no active placement (a job placed anew meanwhile keeps its placement; the
  orphan is then fenced as before once its grace ends);
- a training job (a gang, placed whole on one cluster), with an id of one placement on its cluster (no `:N`):
  an inference job may be spread over several clusters, whose shares the store cannot rebuild from one id;
- its agent has said the placement's phase (Placed or Running: a JobUpdate, which a re-sync sends for every
  placement before its CapacityReport) and the cluster's report has a pool the job accepts.

The placement is booked (billed, counted against quota and fair share, and off its pool's free count) on the model
it runs on, which the store cannot tell: a gang accepting [H100, A100] placed on A100 because H100 was full was
adopted as H100. Its agent says it (JobUpdate.accelerator_model, its Launch's, kept on the member); that word is
checked, never trusted: it is used only when one of the job's alternatives accepts a pool of that model in the
cluster's report. Else (an agent before 0.18.0 says none; a model the job does not accept or the cluster has no
pool of) the placement is booked on the first alternative with a pool there, in the alternatives' order, as before
0.18.0, and a warning says so. The word names a model, not its vendor: where two vendors' pools of that name both
accept the job, the one whose devices in use could hold the gang is booked; if both could, the first alternative's,
the vendor first by name, and a warning says so (`_one_vendor`; before, whichever the report listed first, unsaid).

A held job (a release since the snapshot undone by the restore: K3) is not adopted while held: its restored object
says held, and an owner or a pipeline may hold it on purpose. Its release adopts the running placement (`release`)
before any cycle can place it a second time elsewhere.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from federator.model import JobKind, JobPhase, partition_worth
from federator.scheduler.alternatives import Assignment, variants
from federator.scheduler.framework import PlacementRequest, accepts_pool
from federator.server import seals
from federator.server.placement_ids import job_of
from federator.server.reapplied import Reapplied
from federator.server.scheduling import new_placements

if TYPE_CHECKING:
    from federator.model import AcceleratorPool, ClusterCapacity, Job, JobId, Placement
    from federator.server.clusters import ClusterRecord
    from federator.server.federator import Federator

log = logging.getLogger("federator.server")
PHASES_KEPT = 20_000  # orphans' phases remembered (each of a job the store holds at an older generation)


class Adoption:
    """The phases agents report of placements newer than the store, and their adoption; see the module docstring."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._phase: dict[tuple[str, str], JobPhase] = {}  # (cluster, placement id) -> the phase its agent said
        self._model: dict[tuple[str, str], str] = {}  # of those, the model its agent said it runs on (if it did)
        self._sealed: set[tuple[str, str]] = set()  # placements whose agent said back their Launch's seal (seals.py)
        self._seal_problem: dict[tuple[str, str], str] = {}  # of the others: the seal said, which proved nothing
        self._said_seal = ("", "", "")  # (cluster, placement id, seal) of the update being applied (`sealed`)
        self.reapplied = Reapplied(fed)  # orphans of jobs the store has no record of, which a job applied again takes

    def heard(self, cluster: str, placement_id: str, phase: JobPhase, job: Job | None, generation: int) -> None:
        """A JobUpdate of a placement the store does not hold, of `job` (None: unknown) at `generation`: its phase
        is kept for `adopt` while it may be adopted (a job held at an older generation, or one the store has no
        record of whose agent said its digest: server/reapplied.py); an end forgets it."""
        key = (cluster, placement_id)
        if phase.is_terminal:
            self.reapplied.said(cluster, placement_id, "")  # ended: no job takes it back
        if job is None and not phase.is_terminal and self.reapplied.knows(cluster, placement_id):
            job_generation = -1
        elif phase.is_terminal or job is None:
            self._forget_one(key)
            return
        else:
            job_generation = job.generation
        if job_generation >= generation:
            self._forget_one(key)
            return
        if key in self._phase or len(self._phase) < PHASES_KEPT:
            self._phase[key] = phase
            self._judge_seal(key)

    def sealed(self, cluster: str, placement_id: str, seal: str) -> None:
        """A JobUpdate's launch_seal, just before its `heard`, which judges it if it keeps the placement's phase."""
        self._said_seal = (cluster, placement_id, seal)

    def _judge_seal(self, key: tuple[str, str]) -> None:
        """Whether the seal said with the update just heard proves that this federator sent this very placement to
        its cluster (server/seals.py): only a proven one is ever adopted (secqa61 H2: an id is any agent's word)."""
        cluster, placement_id = key
        said_of, seal = self._said_seal[:2], self._said_seal[2]
        self._said_seal = ("", "", "")
        named = job_of(placement_id, cluster)
        current = seals.current()
        if said_of == key and named is not None and current.launched(seal, placement_id, named[0], named[1], cluster):
            self._sealed.add(key)
            self._seal_problem.pop(key, None)
        else:
            self._sealed.discard(key)
            self._seal_problem[key] = seal if said_of == key else ""

    def said_model(self, cluster: str, placement_id: str, model: str) -> None:
        """A JobUpdate's accelerator_model, after `heard`: kept only of a placement whose phase is kept for `adopt`
        (so at most PHASES_KEPT), which books it on that model if the job and the cluster's pools allow."""
        key = (cluster, placement_id)
        if key not in self._phase:
            return
        if model:
            self._model[key] = model
        else:
            self._model.pop(key, None)  # an update without one: an older agent, or a CPU-only placement

    def adopt(self, rec: ClusterRecord, placement_id: str, job_id: JobId, generation: int) -> bool:
        """Adopt `placement_id` (of `job_id` at `generation`, on `rec`'s cluster) if it may be; whether it was."""
        fed = self.fed
        job = fed.jobs.get(job_id)
        phase = self._phase.get((rec.name, placement_id))
        if (job is None or phase is None or rec.capacity is None or job.phase is not JobPhase.PENDING
                or job.hold is not None or job.generation >= generation or job.spec.kind is not JobKind.TRAINING
                or any(p.phase.is_active for p in job.placements)):
            return False
        if (rec.name, placement_id) not in self._sealed and seals.current().required:
            said_seal = self._seal_problem.get((rec.name, placement_id), "")
            self._forget_one((rec.name, placement_id))  # said again at its next update: logged once an update
            fed.metrics.agent_unproven_words.labels(rec.name, "launch", seals.current().reason(said_seal)).inc()
            log.warning("cluster %s runs placement %s of job %s, which the store holds Pending at generation %d, but "
                        "its agent %s: not adopted (only a placement this federator can prove it launched there is); "
                        "an orphan, cancelled after --orphan-grace%s", rec.name, placement_id[:200], job.job_id,
                        job.generation, seals.current().why_not(said_seal), next_same_id(job.generation, generation))
            return False
        said = self._model.get((rec.name, placement_id), "")
        placement = self._shape(job, rec, rec.capacity, generation, said)
        if placement is None or placement.placement_id != placement_id:
            return False
        self._forget_one((rec.name, placement_id))
        if said != placement.accelerator_model:
            log.warning("cluster %s: placement %s of job %s is booked on the first model the job accepts with a pool "
                        "there (%s): its agent %s", rec.name, placement_id, job.job_id,
                        placement.accelerator_model or "CPU only",
                        f"said it runs on {said[:80]!r}, which none of the job's alternatives accepts in the "
                        "cluster's report (not trusted)" if said else
                        "said no model (an agent before 0.18.0, or one that kept none)")
        older = job.generation
        placement.phase = phase
        job.generation = generation
        job.placements = [*job.placements, placement]
        job.pending_reason = None
        job.placed_at = fed.clock()
        fed.placement_index.add(placement_id, job.job_id)
        rec.acked.add(placement_id)
        rec.seen.add(placement_id)
        fed.cycles.adopted(job)
        fed.run_limits.started(job, phase)
        fed._derive_phase(job)
        fed.metrics.placements.labels("adopted").inc()
        log.warning("cluster %s runs placement %s of job %s, which the store held Pending at generation %d (a store "
                    "restored from an older state, e.g. the host cluster's etcd): adopted as the job's placement (%s), "
                    "not held as an orphan", rec.name, placement_id, job.job_id, older, phase.value)
        fed.journal.write_or_owe([job], then=fed.notify)
        return True

    def release(self, job: Job) -> None:
        """A held job released: a placement of it an agent runs, held as an orphan, is adopted now (K3), before a
        cycle places the job a second time."""
        for cluster in self.fed.orphans.clusters_holding():
            rec = self.fed.clusters.get(cluster)
            if rec is None:
                continue
            for pid, (job_id, generation) in self.fed.orphans.held_of(cluster).items():
                if job_id == job.job_id and self.adopt(rec, pid, job_id, generation):
                    self.fed.orphans.adopted(cluster, pid)
                    return

    def forget(self, cluster: str) -> None:
        """A cluster forgotten, or its agent re-syncing: what it said before is said again."""
        self._phase = {k: v for k, v in self._phase.items() if k[0] != cluster}
        self._model = {k: v for k, v in self._model.items() if k[0] != cluster}
        self._sealed = {k for k in self._sealed if k[0] != cluster}
        self._seal_problem = {k: v for k, v in self._seal_problem.items() if k[0] != cluster}
        self.reapplied.forget(cluster)

    def _forget_one(self, key: tuple[str, str]) -> None:
        """What was said of one placement: adopted, or refused for good."""
        self._phase.pop(key, None)
        self._model.pop(key, None)
        self._sealed.discard(key)
        self._seal_problem.pop(key, None)

    def _shape(self, job: Job, rec: ClusterRecord, capacity: ClusterCapacity, generation: int,
               said: str) -> Placement | None:
        """The placement of the whole job on this cluster, at `generation`: on a pool of the model its agent `said`
        it runs on, under the first alternative that accepts one; else (none said, or none accepts it) on its first
        alternative with a pool here the job accepts, as the scheduler would have made it; None if none."""
        request = PlacementRequest(job.job_id, job.spec, job.spec.replicas)
        chosen = variants(request, self.fed.scheduler.config.legacy_vendor)

        def on_pool(v: PlacementRequest, pool: AcceleratorPool) -> Placement:
            a = Assignment(rec.name, rec.region, job.spec.replicas, pool.accelerator_model, pool.vendor,
                           pool.resource_name, v.accelerator_milli, v.alternative, partition_worth(pool))
            return new_placements(job.job_id, generation, [a])[0]

        if said:
            found = [(v, pool) for v in chosen if v.accelerator_milli for pool in capacity.accelerator_pools
                     if pool.accelerator_model == said and accepts_pool(v, pool)]
            if found:
                return on_pool(*_one_vendor(found, job, rec.name, said))
        for v in chosen:
            if not v.accelerator_milli:
                a = Assignment(rec.name, rec.region, job.spec.replicas, "", alternative=v.alternative)
                return new_placements(job.job_id, generation, [a])[0]
            for pool in capacity.accelerator_pools:
                if accepts_pool(v, pool):
                    return on_pool(v, pool)
        return None


def _one_vendor(found: list[tuple[PlacementRequest, AcceleratorPool]], job: Job, cluster: str,
                said: str) -> tuple[PlacementRequest, AcceleratorPool]:
    """Of the (alternative, pool) pairs that accept the model its agent `said`, the one to book: the first, when
    they are all one vendor's. Pools of two vendors may share a model's name in one cluster (an agent sends one
    pool per (vendor, model)) and JobUpdate says the model only: the pools that cannot hold the gang (fewer
    devices in use than it holds) are not it; if that leaves one vendor, it is that one. Else the federator cannot
    tell: it books the first alternative's, the vendor first by name (not the report's order, which was the
    choice before: a report listing the pools the other way booked the other vendor), and says so."""
    if len({pool.vendor for _, pool in found}) == 1:
        return found[0]
    able = [(v, pool) for v, pool in found if _in_use(pool) >= pool.device_milli_taken(v.accelerator_milli,
                                                                                       job.spec.replicas)]
    if len({pool.vendor for _, pool in able}) == 1:
        return able[0]
    v, pool = min(able or found, key=lambda vp: (vp[0].alternative, vp[1].vendor))
    log.warning("cluster %s: placement of job %s is booked on vendor %s's %s pool: its agent said it runs on %s, "
                "which pools of vendors %s share on that cluster and which could each hold it (JobUpdate does not "
                "say the vendor); the first alternative's, the vendor first by name", cluster, job.job_id,
                pool.vendor, said, said, ", ".join(sorted({p.vendor for _, p in able or found})))
    return v, pool


def _in_use(pool: AcceleratorPool) -> int:
    """Milli whole-device equivalents of `pool` its cluster's report says are taken."""
    return pool.accelerator_milli_of(pool.allocatable_accelerators) - pool.free_device_milli



def next_same_id(stored: int, generation: int) -> str:
    """The end of a WARNING of an unadopted placement newer than the store (goagentqa62 M4): when it is of the very
    generation the store issues next, the job placed again on the same cluster takes its id, and the agent, holding
    it, answers that Launch with the placement it runs (agent.proto step 6): the job's own, not cancelled, no second
    run. The words said "never adopted" while that happened."""
    if generation != stored + 1:
        return ", and the job placed again"
    return (f", unless the job is placed again on this cluster first: that placement is generation {generation} "
            "again, this very id, which the agent runs already (it answers the Launch with it: the job's own, not "
            "run twice)")

__all__ = ["Adoption", "next_same_id"]
