"""A refused placement brings back only the parked jobs its member's last report holds (server/scheduling.py).

A placement its member never reported holding frees no room there when it is refused: only the federator's
reservation of it ends, and the member's last report bounds what a cycle can see. Before, a refusal brought
back every parked job of its model (every any-model and CPU-only job too), so with agents refusing CPU-only
placements every cycle went over most of a 10,000-job backlog again (docs/benchmarks.md, "Where a placed
Submit's CPU goes"). Jobs of the refused job's own queue still come back: its quota and fair-share usage ended.
"""

from __future__ import annotations

from dataclasses import replace

from server_support import Clock, MemoryStore, join, make

from federator.model import ClusterCapacity, JobPhase

from builders import cluster, job, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def _report(free_nodes: int, *placement_ids: str) -> ClusterCapacity:
    cap = cluster("east-1", "r", pool(H100, nodes=free_nodes)).capacity
    return replace(cap, placement_ids=frozenset(placement_ids))


def test_a_refusal_brings_back_the_jobs_the_report_holds_and_leaves_the_rest_parked() -> None:
    fed = make(MemoryStore(), Clock())
    rec = join(fed, "east-1")
    fed.report(rec, _report(1))  # one node of 8 free H100
    small = fed.submit(job("small", gpus=1))
    fed.schedule_once()
    assert fed.jobs[small.job_id].phase is JobPhase.PLACED
    eight = fed.submit(job("eight", gpus=8, queue="other"))  # the report holds it; small's reservation does not
    huge = fed.submit(job("huge", gpus=8, replicas=2, queue="other"))  # two nodes of 8: the report holds none
    fed.schedule_once()
    assert eight.job_id in fed.cycles.parked and huge.job_id in fed.cycles.parked
    pid = fed.jobs[small.job_id].placements[0].placement_id
    fed.refused(rec, pid, "2 x (CPU, ...) on CPU nodes do not fit")
    assert fed.jobs[small.job_id].phase is JobPhase.PENDING
    assert eight.job_id not in fed.cycles.parked  # the room small's reservation held is free again
    assert huge.job_id in fed.cycles.parked  # nothing came free that holds it


def test_a_placement_its_member_reported_holding_still_brings_back_its_model() -> None:
    """Once a report lists the placement, its end frees room at the member that the last report does not show."""
    fed = make(MemoryStore(), Clock())
    rec = join(fed, "east-1")
    fed.report(rec, _report(1))
    small = fed.submit(job("small", gpus=1))
    fed.schedule_once()
    pid = fed.jobs[small.job_id].placements[0].placement_id
    fed.report(rec, replace(_report(0), placement_ids=frozenset({pid})))  # it runs: the node is busy
    huge = fed.submit(job("huge", gpus=8, replicas=2, queue="other"))
    fed.schedule_once()
    assert huge.job_id in fed.cycles.parked
    fed.refused(rec, pid, "stopped")
    assert huge.job_id not in fed.cycles.parked
