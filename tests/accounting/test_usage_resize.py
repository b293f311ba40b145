"""A placement shrunk in place (server/shrink.py) is metered at its new size from the moment it is stored: the
record of the old size closes then and one of the new size opens, under the same placement id."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from test_usage import Clock, start

from federator.accounting import summarize
from federator.accounting.meter import UsageMeter
from federator.accounting.store import SqliteUsageStore
from federator.jobfile import parse_job
from federator.model import AgentFeature, Job, JobPhase
from federator.security.authz import Principal, stamp_owner
from federator.server.federator import Federator

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


@dataclass(frozen=True)
class Serving:
    """A federator with its meter and usage store, and a 6-replica serving job Running on one resizable member."""

    clock: Clock
    fed: Federator
    meter: UsageMeter
    usage: SqliteUsageStore
    job: Job
    placement_id: str


def serving_six(tmp_path: Path) -> Serving:
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
    return Serving(clock, fed, meter, usage, job, p.placement_id)


def test_a_part_shrunk_from_6_to_4_counts_4_accelerators_from_then_on(tmp_path: Path) -> None:
    s = serving_six(tmp_path)
    s.clock.now = 10.0
    s.fed.scale(s.job.job_id, 4)
    assert s.job.placements[0].placement_id == s.placement_id
    assert s.meter.open[s.placement_id].accelerators_milli == 4000
    s.clock.now = 20.0
    # 6 accelerators for 10 s, then 4 for 10 s
    assert summarize(s.usage.query(since=0, until=20), since=0, until=20, now=20).total.accelerator_seconds == 100.0
    s.fed.cycles.close()


def test_two_resizes_within_one_second_keep_both_earlier_sizes(tmp_path: Path) -> None:
    """A resize keeps the earlier size under `PID#resized-<t>`; with <t> in whole seconds, a second resize within
    the same second replaced the first one's record (the same key) and its usage was lost (usagefix's find)."""
    s = serving_six(tmp_path)
    s.clock.now = 10.1
    s.fed.scale(s.job.job_id, 4)
    s.clock.now = 10.3
    s.fed.scale(s.job.job_id, 2)
    s.clock.now = 20.0
    ids = sorted(r.placement_id for r in s.usage.query(since=0, until=20))
    assert len(ids) == 3, ids
    # 6 for 10.1 s, 4 for 0.2 s, 2 for 9.7 s
    assert summarize(s.usage.query(since=0, until=20), since=0, until=20, now=20).total.micro == \
        6 * 10_100_000 + 4 * 200_000 + 2 * 9_700_000
    s.fed.cycles.close()
