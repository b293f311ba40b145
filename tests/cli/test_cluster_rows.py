"""`federator get clusters`: what the table shows of each member's accelerators."""

from __future__ import annotations

from typing import Any

import pytest

from federator.cli.output import cluster_rows
from federator.model import AcceleratorPool, ClusterCapacity

A100 = "NVIDIA-A100-SXM4-80GB"


def _member(pool: AcceleratorPool) -> dict[str, Any]:
    return {"name": "member-b", "region": "r", "state": "Ready", "placements": 0, "last_report_at": 0.0,
            "gang_admission": "kueue", "capacity": ClusterCapacity(accelerator_pools=(pool,))}


def test_free_accelerators_the_members_quota_holds_back_are_shown_beside_free_over_total() -> None:
    """The test bed's member-b: 24 free A100 on its nodes, a Kueue ClusterQueue of 8 GPUs."""
    held = AcceleratorPool(A100, (2, 0, 0, 0, 0, 0, 0, 0, 1), 24, 24, quota_held_accelerators=16)
    headers, [row] = cluster_rows([_member(held)], wide=True)
    assert row[headers.index("ACCELERATORS FREE/TOTAL")] == "8/24 (16 quota held)"
    assert row[headers.index("MODELS (free/total)")] == f"{A100} 8/24 (16 quota held)"


def test_nothing_is_added_where_no_quota_holds_anything_back() -> None:
    headers, [row] = cluster_rows([_member(AcceleratorPool(A100, (2, 0, 0, 0, 0, 0, 0, 0, 1), 24, 24))], wide=False)
    assert row[headers.index("ACCELERATORS FREE/TOTAL")] == "8/24"


@pytest.mark.parametrize(("milli", "shown"), [(16_000, "16"), (500, "0.5"), (1_250, "1.25"),
                                              (1_099_511_627_776, "1099511627.776"), (0, "0")])
def test_cpus_free_read_as_cores_never_in_exponent_notation(milli: int, shown: str) -> None:
    """Outside QA's Go agent (F11): a big member's CPUS FREE read 1.09951e+09."""
    member = {**_member(AcceleratorPool(A100, (1,), 8, 8)),
              "capacity": ClusterCapacity(cpu_milli_allocatable=milli, cpu_milli_free=milli)}
    headers, [row] = cluster_rows([member], wide=False)
    assert row[headers.index("CPUS FREE")] == shown
