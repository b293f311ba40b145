"""A job's restart count (server/restarts.py): a gang placed again after its cluster was Lost says so, and why.

Outside pretraining QA, P5: such a job said only "4 replicas running on nv-b"; nothing counted the restarts or
said why the earlier placement ended. Here the count, its reason and time, as the store keeps them (the schema
stays 4; a job stored before 0.17.0 counts from its generation), as `get jobs` RESTARTS and a FederatedJob's
status say them.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from server_support import LOST_AFTER, Clock, MemoryStore, capacity, join, make, spec

from federator.api.convert import job_from_pb, job_to_pb
from federator.backends.kube.resources import job_status
from federator.cli.output import job_rows
from federator.model import ClusterState, Job, JobPhase, ReasonCode
from federator.server.federator import Federator
from federator.store.codec import job_from_dict, job_to_dict

CRD = Path(__file__).parents[2] / "deploy/helm/federator/crds/federatedjobs.yaml"


def _running(fed: Federator, name: str) -> Job:
    job = fed.submit(spec(name))
    fed.schedule_once()
    (p,) = job.placements
    fed.acked(fed.clusters[p.cluster], p.placement_id)
    fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.RUNNING, "running")
    assert job.phase is JobPhase.RUNNING
    return job


def _lost_and_placed_again(store: MemoryStore, clock: Clock) -> tuple[Federator, Job, str]:
    fed = make(store, clock)
    join(fed, "east-1")
    join(fed, "west-1")
    job = _running(fed, "train")
    home = job.placements[0].cluster
    away = next(r for n, r in fed.clusters.items() if n != home)
    fed.disconnect(fed.clusters[home])
    clock.now += LOST_AFTER + 1
    fed.report(away, capacity())  # the other cluster stays Ready
    fed.check_leases()
    assert fed.clusters[home].state is ClusterState.LOST
    fed.schedule_once()
    assert job.placements and job.placements[0].cluster != home
    return fed, job, home


def test_a_job_placed_again_after_its_cluster_was_lost_counts_one_restart_and_says_why() -> None:
    store, clock = MemoryStore(), Clock()
    _, job, home = _lost_and_placed_again(store, clock)
    assert job.restarts == 1
    assert job.last_restart_reason is not None
    assert job.last_restart_reason.code is ReasonCode.CLUSTER_NOT_READY and home in job.last_restart_reason.message
    assert job.last_restart_at == clock.now
    stored = store.docs[job.job_id]  # what a restart of the federator reads back
    assert stored.restarts == 1 and stored.last_restart_reason == job.last_restart_reason
    back = job_from_dict(job_to_dict(job))  # the store's document: a key of it, no new column
    assert (back.restarts, back.last_restart_reason, back.last_restart_at) == (1, job.last_restart_reason,
                                                                                job.last_restart_at)
    over = job_from_pb(job_to_pb(job))  # what gRPC Get/List/Watch carry
    assert (over.restarts, over.last_restart_reason, over.last_restart_at) == (1, job.last_restart_reason,
                                                                                job.last_restart_at)


def test_a_job_never_placed_again_counts_none() -> None:
    store, clock = MemoryStore(), Clock()
    fed = make(store, clock)
    join(fed, "east-1")
    job = _running(fed, "steady")
    assert job.restarts == 0 and job.last_restart_reason is None
    assert job_to_pb(job).restarts == 0 and not job_to_pb(job).HasField("last_restart_reason")
    headers, rows = job_rows([job], wide=False)
    assert rows[0][headers.index("RESTARTS")] == "0"


def test_a_job_stored_before_the_count_shows_its_generation_less_its_placement() -> None:
    _, job, _ = _lost_and_placed_again(MemoryStore(), Clock())
    doc = job_to_dict(job)
    for key in ("restarts", "last_restart_reason", "last_restart_at"):
        del doc[key]  # as 0.16.0 wrote it
    assert job_from_dict(doc).restarts == 1
    fresh = job_to_dict(Job(job_id=job.job_id, spec=job.spec, submitted_at=1.0))
    del fresh["restarts"]
    assert job_from_dict(fresh).restarts == 0


def test_get_jobs_shows_restarts_with_the_last_reason() -> None:
    _, job, _ = _lost_and_placed_again(MemoryStore(), Clock())
    for wide in (False, True):
        headers, rows = job_rows([job], wide=wide)
        assert headers.index("RESTARTS") == headers.index("WAIT") + 1
        assert rows[0][headers.index("RESTARTS")].startswith("1 (ClusterNotReady, ")


def test_the_federatedjob_status_says_the_restarts_and_the_crd_keeps_them() -> None:
    _, job, home = _lost_and_placed_again(MemoryStore(), Clock())
    status = job_status(job, now=job.last_restart_at)
    assert status["restarts"] == 1
    assert status["lastRestart"]["code"] == "ClusterNotReady" and home in status["lastRestart"]["message"]
    crd = yaml.safe_load(CRD.read_text())
    version = crd["spec"]["versions"][0]
    props = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert props["restarts"]["type"] == "integer"  # else the apiserver prunes it from the status
    assert set(props["lastRestart"]["properties"]) == {"code", "message", "at", "cluster"}  # cluster: since 0.20.0
    assert {"name": "Restarts", "type": "integer", "jsonPath": ".status.restarts"}.items() <= next(
        c for c in version["additionalPrinterColumns"] if c["name"] == "Restarts").items()
