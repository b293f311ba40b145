"""A job's placements have one id each, even two on one cluster: an inference job whose replicas a cluster can
host only on two accelerator models gets a placement per model there. Both had the id JOB.gGEN.CLUSTER, so the
agent took the second launch for the first ("already here: nothing new started"), one replica never ran, and
the job stayed Placed forever holding that accelerator. And the stop an agent gets for a placement that has
ended says so."""

from __future__ import annotations

from dataclasses import replace

from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job
from federator.model import JobId, JobPhase
from federator.server.orders import CancelOrder, LaunchOrder
from federator.server.scheduling import placement_ids

from builders import cluster, pool

L40S, A100 = "NVIDIA-L40S", "NVIDIA-A100-80GB"


def test_two_placements_on_one_cluster_have_two_ids_and_each_is_its_own() -> None:
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="east-1", region="r", labels={})
    cap = cluster("east-1", "r", pool(L40S, nodes=1, free=1, gpus_per_node=1),
                  pool(A100, nodes=1, free=1, gpus_per_node=1)).capacity
    fed.report(rec, cap)
    job = fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                "metadata": {"name": "serve"},
                                "spec": {"kind": "inference", "replicas": 2,
                                         "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}}))
    fed.schedule_once()
    assert sorted(p.accelerator_model for p in job.placements) == [A100, L40S]  # one cluster, two models
    ids = [p.placement_id for p in job.placements]
    assert len(set(ids)) == 2 and ids[0] == f"{job.job_id}.g1.east-1" and ids[1] == f"{job.job_id}.g1.east-1:2"
    launched = []
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        if isinstance(order, LaunchOrder):
            launched.append(order.placement.placement_id)
    assert sorted(launched) == sorted(ids)
    for pid in ids:  # each placement's news moves that placement only, and both finishing ends the job
        fed.acked(rec, pid)
        fed.job_update(rec, pid, JobPhase.RUNNING, "1 replica running")
    fed.job_update(rec, ids[0], JobPhase.SUCCEEDED, "done")
    assert job.phase is not JobPhase.SUCCEEDED and job.placements[1].phase is JobPhase.RUNNING
    fed.job_update(rec, ids[1], JobPhase.SUCCEEDED, "done")
    assert job.phase is JobPhase.SUCCEEDED


def test_a_second_placement_on_a_cluster_never_takes_the_id_of_a_cluster_named_like_it() -> None:
    """Cluster names may hold dots: a `.2` suffix after `east` would be the id of cluster `east.2`."""
    ids = placement_ids(JobId("j"), 3, ["east", "east", "east.2", "east"])
    assert ids == ["j.g3.east", "j.g3.east:2", "j.g3.east.2", "j.g3.east:3"] and len(set(ids)) == 4


def test_a_report_still_listing_a_finished_placement_is_told_it_ended_not_that_it_was_replaced() -> None:
    """An agent's report built as a placement succeeded still lists it; the stop it gets back said
    `superseded: not a current placement`, which reads, in an agent's log, like a duplicate run that was fenced."""
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="east-1", region="r", labels={})
    cap = cluster("east-1", "r", pool(A100, nodes=1, free=1, gpus_per_node=1)).capacity
    fed.report(rec, cap)
    job = fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                "metadata": {"name": "train"},
                                "spec": {"kind": "training", "replicas": 1,
                                         "resources": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}}}))
    fed.schedule_once()
    (p,) = job.placements
    fed.acked(rec, p.placement_id)
    fed.job_update(rec, p.placement_id, JobPhase.SUCCEEDED, "done")
    while not rec.outbox.empty():
        rec.outbox.get_nowait()
    fed.report(rec, replace(cap, sequence=2, placement_ids=frozenset({p.placement_id})))
    stops = []
    while not rec.outbox.empty():
        o = rec.outbox.get_nowait()
        if isinstance(o, CancelOrder):
            stops.append(o)
    assert [(o.placement_id, o.reason) for o in stops] == [(p.placement_id, "placement has ended (Succeeded)")]
