"""federator_pending_accelerators: what the waiting jobs ask for, by vendor and model, in the unit of supply.

A planner sets it against federator_cluster_accelerators{state="free"} to see accelerators free while jobs wanting
them wait (outside planners' QA, P3): before, demand was job counts by queue and reason, with no model and no unit.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from federator.metrics import Metrics
from federator.model import AcceleratorAlternative, AcceleratorPool, JobPhase
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, job

H100 = "NVIDIA-H100-80GB-HBM3"
MIG_1G = f"{H100}-MIG-1g.10gb"


def _federator(tmp_path: Path) -> tuple[Federator, Metrics]:
    metrics = Metrics()
    fed = Federator(store=SqliteJobStore(tmp_path / "federator.db"), metrics=metrics)
    rec = fed.connect(cluster="member-a", region="r", labels={})
    whole = AcceleratorPool(H100, (0,) * 8 + (1,), 8, 8, vendor="nvidia", sharing="None")
    hist = [0] * 15
    hist[14] = 1
    mig = AcceleratorPool(MIG_1G, tuple(hist), 14, 14, vendor="nvidia", sharing="MIG", unit_milli=125)
    fed.report(rec, cluster("member-a", "r", whole, mig).capacity)
    return fed, metrics


def _wanted(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {(s.labels["vendor"], s.labels["model"]): s.value for family in metrics.registry.collect()
            if family.name == "federator_pending_accelerators" for s in family.samples}


def test_pending_jobs_are_counted_by_the_model_they_ask_in_whole_device_equivalents(tmp_path: Path) -> None:
    fed, metrics = _federator(tmp_path)
    assert _wanted(metrics) == {}
    fed.submit(job("gang", replicas=2, gpus=4, models=(H100,)))  # 8 H100
    fed.submit(job("slices", replicas=3, gpus=1, models=(MIG_1G,)))  # 3 partitions asked by name: 3 x 0.125
    fed.submit(job("either", gpus=1, models=(H100, MIG_1G)))  # open to two models
    fed.submit(job("open", replicas=2, gpus=1))  # any model
    fed.submit(job("wanted", gpus=1, models=("A100",)))  # a catalog model no member has: named as the catalog does
    fed.submit(replace(job("by-vendor"), accelerators=(AcceleratorAlternative(2000, vendor="nvidia"),)))
    fed.submit(job("cpu-only", cpu=4))
    assert _wanted(metrics) == {("nvidia", H100): 8.0, ("nvidia", MIG_1G): 0.375, ("nvidia", "any"): 3.0,
                                ("any", "any"): 2.0, ("nvidia", "NVIDIA-A100-SXM4-80GB"): 1.0}
    fed.schedule_once()
    placed = {j.spec.name for j in fed.jobs.values() if j.phase is not JobPhase.PENDING}
    assert "gang" in placed and "slices" in placed  # both fit the member: no longer wanted
    wanted = _wanted(metrics)
    assert ("nvidia", MIG_1G) not in wanted and wanted.get(("nvidia", H100)) is None
    assert wanted[("nvidia", "NVIDIA-A100-SXM4-80GB")] == 1.0  # still waiting for a model no member has


def test_a_model_neither_a_member_nor_the_catalog_knows_is_other() -> None:
    """Before the fleet settles (a restart) Submit takes any name: a label value is never what a tenant wrote."""
    from federator.model import Job, JobId
    from federator.server.pending_demand import pending_accelerators

    pending = [Job(JobId(f"j{i}"), job(f"j{i}", gpus=1, models=(f"made-up-{i}",)), submitted_at=0.0)
               for i in range(3)]
    assert pending_accelerators(pending, []) == {("other", "other"): 3.0}
