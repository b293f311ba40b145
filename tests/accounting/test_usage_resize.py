"""A placement shrunk in place (server/shrink.py) is metered at its new size from the moment it is stored: the
record of the old size closes then and one of the new size opens, under the same placement id."""

from __future__ import annotations

from pathlib import Path

from test_usage import Clock, start

from federator.accounting import summarize
from federator.jobfile import parse_job
from federator.model import AgentFeature, JobPhase
from federator.security.authz import Principal, stamp_owner

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def test_a_part_shrunk_from_6_to_4_counts_4_accelerators_from_then_on(tmp_path: Path) -> None:
    clock = Clock(0.0)
    fed, meter, usage = start(tmp_path / "db", clock)
    rec = fed.connect(cluster="east-1", region="r", labels={})
    rec.features = frozenset({AgentFeature.RESIZE})
    fed.report(rec, cluster("east-1", "r", pool(H100, nodes=4)).capacity)
    serve = stamp_owner(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                   "metadata": {"name": "chat"},
                                   "spec": {"kind": "inference", "replicas": 6, "acceleratorModels": [H100],
                                            "resources": {"cpu": "1", "nvidia.com/gpu": 1}}}), Principal("ann"))
    job = fed.submit(serve)
    fed.schedule_once()
    (p,) = job.placements
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
    clock.now = 10.0
    fed.scale(job.job_id, 4)
    assert job.placements[0].placement_id == p.placement_id
    assert meter.open[p.placement_id].accelerators_milli == 4000
    clock.now = 20.0
    # 6 accelerators for 10 s, then 4 for 10 s
    assert summarize(usage.query(since=0, until=20), since=0, until=20, now=20).total.accelerator_seconds == 100.0
    fed.cycles.close()


def test_two_resizes_within_one_second_keep_both_earlier_sizes(tmp_path: Path) -> None:
    """A resize keeps the earlier size under `PID#resized-<t>`; with <t> in whole seconds, a second resize within
    the same second replaced the first one's record (the same key) and its usage was lost (usagefix's find)."""
    clock = Clock(0.0)
    fed, meter, usage = start(tmp_path / "db", clock)
    rec = fed.connect(cluster="east-1", region="r", labels={})
    rec.features = frozenset({AgentFeature.RESIZE})
    fed.report(rec, cluster("east-1", "r", pool(H100, nodes=4)).capacity)
    serve = stamp_owner(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                   "metadata": {"name": "chat"},
                                   "spec": {"kind": "inference", "replicas": 6, "acceleratorModels": [H100],
                                            "resources": {"cpu": "1", "nvidia.com/gpu": 1}}}), Principal("ann"))
    job = fed.submit(serve)
    fed.schedule_once()
    (p,) = job.placements
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
    clock.now = 10.1
    fed.scale(job.job_id, 4)
    clock.now = 10.3
    fed.scale(job.job_id, 2)
    clock.now = 20.0
    ids = sorted(r.placement_id for r in usage.query(since=0, until=20))
    assert len(ids) == 3, ids
    # 6 for 10.1 s, 4 for 0.2 s, 2 for 9.7 s
    assert summarize(usage.query(since=0, until=20), since=0, until=20, now=20).total.micro == \
        6 * 10_100_000 + 4 * 200_000 + 2 * 9_700_000
    fed.cycles.close()
