"""A job applied again after a restore of the store takes back the placement its earlier self runs (an orphan).

Why: a FederatedJob created after the snapshot a host cluster's etcd is restored from is gone from the store, while
its member runs its placement on (an orphan, server/orphans.py). Applied again (a GitOps tool re-applies its
manifest, or the runbook's step 5), it was a new job with a new id: it ran beside its own orphan until
--orphan-grace cancelled the orphan, the gang run twice (its accelerators twice, two trainings writing one
checkpoint directory; outside QA, Kubernetes DR, K2). The user expects what a restored Pending job already does
(server/adoption.py): the job takes back its running work.

What says it is the same job, safely. The orphan's id names its job (NAME-XXXXXX: the job's name and a random
suffix) but not its namespace, so two tenants' jobs of one name cannot be told apart by it; the new object's uid
differs from the old one's, and the store has no record of either. So the federator sends with each Launch a digest
of the job's spec as stored (`job_digest`: its namespace, name, queue, template, replicas, everything it asks
for), and the agent keeps it with the placement on its member and says it back on every JobUpdate (agent.proto,
Launch.job_digest and JobUpdate.job_digest). A job submitted later whose own digest is the same is the same work,
of the same owner: it takes the orphan's job id (so the id the agent runs names it again) and then the placement,
as a restored Pending job does (`Adoption.adopt`: a training gang, Placed or Running, nothing launched, billed from
now on).

Only a job no person is recorded to have submitted has a digest (a FederatedJob made with kubectl or a GitOps tool:
its namespace is its owner, `security/authz.submitter_of`). Kubernetes' RBAC on the namespace is then the boundary
between tenants, and the digest covers the namespace: a tenant that names a job alike in its own namespace has
another digest and never adopts another tenant's orphan. A job of a recorded user (the gRPC API) has none: the
digest would let a provider confirm a guess of who submitted it (the Launch leaves the user out,
server/launch_spec.py), and the user could not be checked otherwise. An agent's digest is checked, never trusted to
name a job: the placement id still names the job and its cluster, and only an orphan's digest is kept.

Not adopted, and an orphan as before: a job re-applied before its member's agent re-synced (the store had no
orphan to match: pause GitOps until the federator has heard every member, the runbook's step 2), a spec changed
since (scaled, edited: not the work that runs), an inference job, and any placement of an agent that kept no
digest (an older agent).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, TypeVar

from federator.api import convert
from federator.model import JobId, JobKind
from federator.server.placement_ids import job_of

if TYPE_CHECKING:
    from federator.model import Job, JobSpec
    from federator.server.federator import Federator


K = TypeVar("K", str, JobId)
DIGEST_FORM = re.compile(r"^v1:[0-9a-f]{64}$")
DIGESTS_KEPT = 20_000  # orphans' digests remembered (each of a placement whose job the store has no record of)


def job_digest(spec: JobSpec) -> str:
    """Launch.job_digest of a job of this spec: "v1:" and the sha256 of its spec's deterministic encoding; "" for a
    job a person is recorded to have submitted (see the module docstring)."""
    if spec.recorded_user:
        return ""
    encoded = convert.spec_to_pb(spec).SerializeToString(deterministic=True)
    return "v1:" + hashlib.sha256(b"federator.io/job-digest/v1\0" + encoded).hexdigest()


def digest_problem(digest: str) -> str | None:
    """Why a JobUpdate.job_digest is refused (`malformed`), or None: empty, or of the form Launch sends."""
    if not digest or DIGEST_FORM.match(digest):
        return None
    return (f"job_update.job_digest: must be empty or the placement's Launch.job_digest, said back unchanged "
            f"(\"v1:\" and 64 lowercase hex digits), got {digest[:80]!r}")


class Reapplied:
    """The digests agents say of orphans whose job the store has no record of, and the jobs that take them back.
    Indexed by digest and by job, so a submit and an admission cost no walk over a restore's thousands of orphans."""

    def __init__(self, fed: Federator) -> None:
        self.fed = fed
        self._said: dict[tuple[str, str], tuple[str, JobId]] = {}  # (cluster, placement id) -> (digest, its job)
        self._by_digest: dict[str, set[tuple[str, str]]] = {}
        self._by_job: dict[JobId, set[tuple[str, str]]] = {}

    def said(self, cluster: str, placement_id: str, digest: str) -> None:
        """A JobUpdate's digest: kept while its placement is of a job the store has no record of."""
        key = (cluster, placement_id)
        named = job_of(placement_id, cluster)
        if not digest or named is None or named[0] in self.fed.jobs or placement_id in self.fed.placement_index:
            self._drop(key)
            return
        if self._said.get(key, ("", ""))[0] == digest or (key not in self._said and len(self._said) >= DIGESTS_KEPT):
            return
        self._drop(key)
        self._said[key] = (digest, named[0])
        self._by_digest.setdefault(digest, set()).add(key)
        self._by_job.setdefault(named[0], set()).add(key)

    def knows(self, cluster: str, placement_id: str) -> bool:
        """Whether the placement's agent said a digest of it (a job submitted later may take it)."""
        return (cluster, placement_id) in self._said

    def reclaim(self, spec: JobSpec) -> JobId | None:
        """The id a job of `spec`, about to be admitted, takes: its earlier self's, whose placement an agent runs
        (the newest generation, if several), when the digests are equal; None if none is."""
        if not self._said or spec.kind is not JobKind.TRAINING:
            return None
        digest = job_digest(spec)
        found: list[tuple[int, JobId]] = []
        for cluster, pid in self._by_digest.get(digest, ()) if digest else ():
            named = job_of(pid, cluster)
            if named is not None and named[0].startswith(f"{spec.name}-") and named[0] not in self.fed.jobs:
                found.append((named[1], named[0]))
        return max(found)[1] if found else None

    def taken_back(self, job: Job) -> None:
        """A job admitted with a reclaimed id is durable: it adopts its running placement now, before any cycle
        can place it a second time (server/adoption.py, as at a release)."""
        mine = self._by_job.get(job.job_id)
        if mine:
            for key in list(mine):
                self._drop(key)
            self.fed.orphans.adoption.release(job)

    def forget(self, cluster: str) -> None:
        """A cluster forgotten: what its agent said goes with it."""
        for key in [k for k in self._said if k[0] == cluster]:
            self._drop(key)

    def _drop(self, key: tuple[str, str]) -> None:
        kept = self._said.pop(key, None)
        if kept is None:
            return
        digest, job_id = kept
        _discard(self._by_digest, digest, key)
        _discard(self._by_job, job_id, key)


def _discard(index: dict[K, set[tuple[str, str]]], at: K, key: tuple[str, str]) -> None:
    """`key` out of `index[at]`, and the entry gone once empty."""
    keys = index.get(at)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[at]


__all__ = ["DIGEST_FORM", "Reapplied", "digest_problem", "job_digest"]
