"""federator_cluster_accelerators is in whole-device equivalents, so its sum over models is accelerators (F7).

The dashboard's "Fleet accelerators" sums every model's state="total" series, and the allocation ratios divide
free by allocatable over every model. A member with 8 whole H100s and one H100 in MIG mixed mode (14 x 1g.10gb,
4 x 3g.40gb) made that 26 accelerators; it is 8 + 14 x 0.125 + 4 x 0.5 = 11.75. A job holding 3 x 3g.40gb shows
ACCELERATORS 1.5 and is billed 1.5; the gauge's reserved and free now move by the same 1.5.
"""

from __future__ import annotations

from pathlib import Path

from federator.metrics import Metrics
from federator.model import AcceleratorPool, JobPhase, format_job_accelerators
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, job

H100 = "NVIDIA-H100-80GB-HBM3"
MIG_1G = f"{H100}-MIG-1g.10gb"
MIG_3G = f"{H100}-MIG-3g.40gb"


def _mig(model: str, partitions: int, unit_milli: int) -> AcceleratorPool:
    """One node's partitions of one profile, as the Kubernetes agent reports a MIG profile (devices.py)."""
    hist = [0] * (partitions + 1)
    hist[partitions] = 1
    return AcceleratorPool(model, tuple(hist), partitions, partitions, vendor="nvidia", sharing="MIG",
                           unit_milli=unit_milli)


def _federator(tmp_path: Path) -> tuple[Federator, Metrics]:
    metrics = Metrics()
    fed = Federator(store=SqliteJobStore(tmp_path / "federator.db"), metrics=metrics)
    rec = fed.connect(cluster="member-a", region="r", labels={})
    whole = AcceleratorPool(H100, (0,) * 8 + (1,), 8, 8, vendor="nvidia", sharing="None")
    fed.report(rec, cluster("member-a", "r", whole, _mig(MIG_1G, 14, 125), _mig(MIG_3G, 4, 500)).capacity)
    return fed, metrics


def _by_model(metrics: Metrics, state: str) -> dict[str, float]:
    return {s.labels["model"]: s.value for family in metrics.registry.collect()
            if family.name == "federator_cluster_accelerators" for s in family.samples
            if s.labels["state"] == state}


def test_the_sum_over_models_counts_a_mig_partition_as_its_share(tmp_path: Path) -> None:
    _, metrics = _federator(tmp_path)
    total = _by_model(metrics, "total")
    assert total == {H100: 8.0, MIG_1G: 1.75, MIG_3G: 2.0}
    assert sum(total.values()) == 11.75
    assert sum(_by_model(metrics, "allocatable").values()) == 11.75
    assert sum(_by_model(metrics, "free").values()) == 11.75


def test_a_job_on_mig_partitions_moves_free_and_reserved_by_what_it_shows_and_is_billed(tmp_path: Path) -> None:
    fed, metrics = _federator(tmp_path)
    held = fed.submit(job("three-halves", replicas=3, gpus=0.5, models=(MIG_3G,)))
    fed.schedule_once()
    placed = fed.jobs[held.job_id]
    assert placed.phase is JobPhase.PLACED and format_job_accelerators(placed) == "1.5"
    assert _by_model(metrics, "reserved")[MIG_3G] == 1.5  # 3 partitions of 0.5, not 3
    assert _by_model(metrics, "free")[MIG_3G] == 0.5
    assert sum(_by_model(metrics, "free").values()) == 10.25
