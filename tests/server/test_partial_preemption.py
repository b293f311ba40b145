"""Preempting a spread job stops only the part in the way (scheduler/preemption.py `victim_units`).

A preemptible inference job served from two regions; a training gang of higher priority needs one cluster's
room. The whole job used to stop: its replicas in the other region were deleted too, an outage of the service
for a gang that needed one cluster. Now only the part on the gang's cluster stops; the other part keeps its
placement and gets no order, and the job stays Running, owing the part, which is placed again when room comes.
"""

from __future__ import annotations

from server_support import Clock, MemoryStore, capacity, join, make
from test_partial_failover import drain, running_on

from federator.jobfile import parse_job
from federator.model import JobPhase, JobSpec, ReasonCode
from federator.server.orders import CancelOrder, LaunchOrder


def _spec(name: str, kind: str, replicas: int, *, priority: int = 0, preemptible: bool = False) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": kind, "replicas": replicas, "priority": priority, "preemptible": preemptible,
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def test_a_gang_that_needs_one_clusters_room_stops_only_the_spread_jobs_part_there() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a, b = join(fed, "a", region="east"), join(fed, "b", region="west")
    serve = fed.submit(_spec("serve", "inference", 4, preemptible=True))
    fed.schedule_once()
    assert {p.cluster: p.replicas for p in serve.placements} == {"a": 2, "b": 2}
    running_on(fed, serve, a, b)
    ids = {p.cluster: p.placement_id for p in serve.placements}
    fed.report(a, capacity(ids["a"], free=0))  # both full now (its parts and others' work)
    fed.report(b, capacity(ids["b"], free=0))

    train = fed.submit(_spec("train", "training", 2, priority=10))
    fed.schedule_once()

    (gone,) = [c for c in ("a", "b") if c not in {p.cluster for p in serve.placements}]
    kept = "b" if gone == "a" else "a"
    assert [p.placement_id for p in serve.placements] == [ids[kept]]  # the other part: same id, no order
    assert serve.phase is JobPhase.RUNNING and serve.replicas_waiting == 2
    assert serve.pending_reason is not None and serve.pending_reason.code is ReasonCode.PREEMPTED
    assert f"its part on {gone} preempted for {train.job_id}" in serve.message, serve.message
    orders = {"a": drain(a), "b": drain(b)}
    assert orders[kept] == []
    assert [o.placement_id for o in orders[gone] if isinstance(o, CancelOrder)] == [ids[gone]]
    assert any(isinstance(o, LaunchOrder) for o in orders[gone])  # the gang, in the room the part leaves
    assert {p.cluster for p in train.placements} == {gone}

    # Room again (a third cluster): only the owed part is placed, the kept one untouched.
    c = join(fed, "c", region="north")
    fed.schedule_once()
    assert sorted(p.cluster for p in serve.placements) == sorted([kept, "c"])
    assert ids[kept] in {p.placement_id for p in serve.placements} and serve.replicas_waiting == 0
    assert any(isinstance(o, LaunchOrder) for o in drain(c))
