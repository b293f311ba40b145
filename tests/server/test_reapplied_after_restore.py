"""A job created after the snapshot a store is restored from, applied again, takes back the placement its earlier
self runs (server/reapplied.py; outside QA, Kubernetes DR, K2): not a second run beside its orphan. Only the same
work of the same owner does: a tenant naming its job alike in its own namespace never adopts another's orphan."""

from __future__ import annotations

from dataclasses import replace

import pytest
from server_support import Clock, MemoryStore, capacity, make, spec

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.jobfile import parse_job
from federator.model import JobId, JobPhase, JobSpec
from federator.security.authz import recorded_owner
from federator.security.limits import RejectReason
from federator.server.federator import Federator
from federator.server.intake import SubmitError
from federator.server.orders import CancelOrder, LaunchOrder
from federator.server.reapplied import digest_problem, job_digest
from federator.server.validation import check_update

GRACE = 1800.0


def _team(namespace: str, *, replicas: int = 2) -> JobSpec:
    return replace(spec("train", replicas=replicas), namespace=namespace)


def _restored(clock: Clock, job_spec: JobSpec) -> tuple[Federator, str, str]:
    """A store restored from a snapshot taken before the job was created; it started since on cluster c. The
    restored federator, the placement's id and the digest its Launch carried."""
    live = MemoryStore()
    first = make(live, clock)
    job = first.submit(job_spec)
    first.connect(cluster="c", region="r", labels={})
    first.report(first.clusters["c"], capacity())
    first.schedule_once()
    assert job.phase is JobPhase.PLACED
    return make(MemoryStore(), clock, orphan_grace=GRACE), job.placements[0].placement_id, job_digest(job.spec)


def _resync(fed: Federator, pid: str, digest: str) -> None:
    """The agent of c re-syncs: the running gang's update with its digest, then a report of a cluster it fills."""
    rec = fed.connect(cluster="c", region="r", labels={})
    fed.orphans.adoption.reapplied.said(rec.name, pid, digest)  # as agent_service.py hands on JobUpdate.job_digest
    fed.job_update(rec, pid, JobPhase.RUNNING, "2 replicas running")
    fed.report(rec, capacity(pid, free=0))


def _orders(fed: Federator) -> list[object]:
    out = []
    for rec in fed.clusters.values():
        while not rec.outbox.empty():
            out.append(rec.outbox.get_nowait())
    return out


def test_a_job_applied_again_takes_back_its_running_placement() -> None:
    clock = Clock()
    fed, pid, digest = _restored(clock, _team("team-a"))
    fed.connect(cluster="d", region="r", labels={})
    fed.report(fed.clusters["d"], capacity())  # room elsewhere: a new job would run a second copy there
    _resync(fed, pid, digest)
    assert fed.orphans.count("c") == 1
    again = fed.submit(_team("team-a"))  # kubectl apply of the same manifest
    assert again.job_id == JobId(pid.split(".g")[0])
    assert (again.phase, again.generation, [p.placement_id for p in again.placements]) == (JobPhase.RUNNING, 1, [pid])
    assert fed.orphans.count("c") == 0
    fed.schedule_once()
    clock.now += GRACE  # the grace over: nothing cancelled, nothing placed a second time
    fed.report(fed.clusters["c"], capacity(pid, free=0))
    fed.schedule_once()
    assert [o for o in _orders(fed) if isinstance(o, (CancelOrder, LaunchOrder))] == []
    stored = {j.job_id: j for j in fed.store.load()}  # type: ignore[attr-defined]
    assert [p.placement_id for p in stored[again.job_id].placements] == [pid]


def test_another_tenants_job_of_the_same_name_and_spec_never_adopts_the_orphan() -> None:
    clock = Clock()
    fed, pid, digest = _restored(clock, _team("team-a"))
    _resync(fed, pid, digest)
    other = fed.submit(_team("team-b"))  # the same manifest, in another tenant's namespace
    assert other.job_id != JobId(pid.split(".g")[0])
    assert (other.phase, other.placements) == (JobPhase.PENDING, [])
    assert fed.orphans.count("c") == 1


def test_a_changed_spec_or_no_digest_leaves_the_orphan_an_orphan() -> None:
    clock = Clock()
    fed, pid, digest = _restored(clock, _team("team-a"))
    _resync(fed, pid, digest)
    scaled = fed.submit(_team("team-a", replicas=1))  # not the work that runs
    assert (scaled.job_id != JobId(pid.split(".g")[0]), scaled.placements) == (True, [])
    assert fed.orphans.count("c") == 1
    fed2, pid2, _ = _restored(clock, _team("team-a"))
    _resync(fed2, pid2, "")  # an agent before 0.17.0 says none
    assert fed2.submit(_team("team-a")).placements == []
    assert fed2.orphans.count("c") == 1


def test_a_job_of_a_recorded_user_has_no_digest_and_the_agent_says_it_back_unchanged() -> None:
    assert job_digest(recorded_owner(_team("team-a"), "alice")) == ""  # a provider could confirm a guess of alice
    digest = job_digest(_team("team-a"))
    assert digest.startswith("v1:") and digest == job_digest(_team("team-a")) != job_digest(_team("team-b"))
    assert digest_problem(digest) is None and digest_problem("") is None
    problem = digest_problem("v1:nothex")
    assert problem is not None and problem.startswith("job_update.job_digest: ")


def test_a_job_may_not_carry_the_digest_annotation_the_agent_keeps() -> None:
    """It could pass its own workload off as another job's at a re-apply: refused at submit, naming the field."""
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
           "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"},
                    "template": {"metadata": {"annotations": {"federator.io/job-digest": "v1:" + "0" * 64}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError, match=r"spec\.template\.metadata\.annotations\[federator\.io/job-digest\]"):
        fed.submit(parse_job(doc))


def test_an_agents_digest_not_of_the_launchs_form_is_refused_naming_the_field() -> None:
    running = convert.phase_to_pb(JobPhase.RUNNING)
    ok = agent_pb2.JobUpdate(placement_id="a-1.g1.c", phase=running, job_digest=job_digest(_team("team-a")))
    assert check_update(ok, None) is None
    refusal = check_update(agent_pb2.JobUpdate(placement_id="a-1.g1.c", phase=running, job_digest="V1:ABC"), None)
    assert refusal is not None and refusal.reason is RejectReason.MALFORMED
    assert refusal.message.startswith("job_update.job_digest: must be empty or the placement's Launch.job_digest")
