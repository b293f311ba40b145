"""`federator get clusters` totals accelerators in whole-device equivalents (outside inference team + SRE, F7).

One 8-GPU H100 node in MIG mixed mode (14 x 1g.10gb + 4 x 3g.40gb, as the test bed's `vendors.mig_nodes` builds it)
beside a node of 8 whole H100s showed ACCELERATORS FREE/TOTAL 26/26: a 1g.10gb slice counted as an H100, while a job
holding 3 x 3g.40gb showed ACCELERATORS 1.5 and was billed 1.5. A partition now counts as its share of a device
(pool unit_milli / 1000: 8 + 14 x 0.125 + 4 x 0.5 = 11.75); the per-model column keeps the pool's own counts and
says "partitions". A time-sliced pool counts its physical GPUs, not its slots. The table reads the BASIC view over
real gRPC, so what the federator sends of each pool (sharing, unit_milli) is what is tested.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_support import serving

from federator.backends.kube.capacity import cluster_capacity
from federator.cli import main
from federator.cli.output import cluster_rows
from federator.model import ClusterCapacity
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

from testbed import NodeSpec  # noqa: E402

MIG_1G = "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"
MIG_3G = "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"


def _capacity(specs: list[NodeSpec]) -> ClusterCapacity:
    """What the Kubernetes agent reports of these nodes (devices.py: a MIG profile is a pool of its own)."""
    nodes = []
    for spec in specs:
        node = spec.manifest()
        node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        nodes.append(node)
    return cluster_capacity(nodes, [])


def _fleet() -> dict[str, ClusterCapacity]:
    fleet = vendors.vendor_fleet(("nvidia", "mig", "shared"))
    return {"member-a": _capacity(fleet["nvidia"] + fleet["mig"]), "member-b": _capacity(fleet["shared"])}


def _get_clusters(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, dict[str, str]]:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    for name, cap in _fleet().items():
        fed.report(fed.connect(cluster=name, region="r", labels={}), cap)
    with serving(fed) as address:
        assert main(["get", "clusters", "--server", address, "--insecure", *flags]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    # Columns are separated by 3 spaces or more; a cell holds at most single spaces ("11.75/11.75", "a, b").
    names = [h.strip() for h in header.split("   ") if h.strip()]
    out = {}
    for row in rows:
        cells = [c.strip() for c in row.split("   ") if c.strip()]
        out[cells[0]] = dict(zip(names, cells, strict=False))
    return out


def test_a_mig_partition_counts_as_its_share_of_a_device_in_the_clusters_total(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = _get_clusters(capsys)
    assert rows["member-a"]["ACCELERATORS FREE/TOTAL"] == "11.75/11.75"  # 8 + 14 x 0.125 + 4 x 0.5
    assert rows["member-b"]["ACCELERATORS FREE/TOTAL"] == "4/4"  # 4 time-sliced L4s, not their 16 slots


def test_wide_sums_vendors_in_devices_and_names_partitions_per_model(capsys: pytest.CaptureFixture[str]) -> None:
    a = _get_clusters(capsys, "-o", "wide")["member-a"]
    assert a["VENDORS (free/total)"] == "nvidia 11.75/11.75"
    models = a["MODELS (free/total)"].split(", ")
    assert f"{MIG_1G} 14/14 partitions" in models and f"{MIG_3G} 4/4 partitions" in models
    assert "NVIDIA-H100-80GB-HBM3 8/8" in models


def test_free_and_quota_held_partitions_count_as_their_share_too() -> None:
    """A full view (FULL, a ClusterCapacity) reads the same: 2 of the 14 1g.10gb partitions free, 4 more held back
    by the member's quota, and the H100 node and the 3g.40gb partitions taken."""
    from dataclasses import replace

    cap = _fleet()["member-a"]
    pools = []
    for p in cap.accelerator_pools:
        if p.accelerator_model == MIG_1G:
            p = replace(p, nodes_by_free=(0, 0, 1), quota_held_accelerators=4)
        else:
            p = replace(p, nodes_by_free=(1,))
        pools.append(p)
    member = {"name": "member-a", "region": "r", "state": "Ready", "placements": 0, "last_report_at": 0.0,
              "capacity": replace(cap, accelerator_pools=tuple(pools))}
    headers, [row] = cluster_rows([member], wide=True)
    assert row[headers.index("ACCELERATORS FREE/TOTAL")] == "0.25/11.75 (0.5 quota held)"
    assert f"{MIG_1G} 2/14 partitions (4 quota held)" in row[headers.index("MODELS (free/total)")]


def test_a_big_fleets_fraction_is_shown_exactly() -> None:
    """A total in equivalents runs to thousands with a fraction: `:g` wrote 2500 nodes' 20001.75 as '20001.8'."""
    from federator.model import AcceleratorPool

    mig = next(p for p in _fleet()["member-a"].accelerator_pools if p.accelerator_model == MIG_1G)
    whole = AcceleratorPool("NVIDIA-H100-80GB-HBM3", (0,) * 8 + (2500,), 20_000, 20_000, vendor="nvidia")
    member = {"name": "big", "region": "r", "state": "Ready", "placements": 0, "last_report_at": 0.0,
              "capacity": ClusterCapacity(accelerator_pools=(whole, mig))}
    headers, [row] = cluster_rows([member], wide=False)
    assert row[headers.index("ACCELERATORS FREE/TOTAL")] == "20001.75/20001.75"


def test_the_basic_views_summary_and_the_full_capacity_give_the_same_row() -> None:
    """One place totals a cluster's pools (model.cluster.accelerator_milli_totals, vendor_totals) for both views: the
    BASIC view's summary (cli/cluster_view.py) holds the pools' figures and no sums of its own."""
    from dataclasses import replace

    from federator.api import convert
    from federator.cli.cluster_view import summary_from_pb

    cap = _fleet()["member-a"]
    pools = tuple(replace(p, nodes_by_free=(0, 0, 1), quota_held_accelerators=4) if p.accelerator_model == MIG_1G
                  else p for p in cap.accelerator_pools)
    full = replace(cap, accelerator_pools=pools)
    rows = []
    for capacity in (full, summary_from_pb(convert.capacity_to_pb(full))):
        member = {"name": "member-a", "region": "r", "state": "Ready", "placements": 0, "last_report_at": 0.0,
                  "capacity": capacity}
        rows.append(cluster_rows([member], wide=True))
    assert rows[0] == rows[1]
    headers, [row] = rows[0]
    assert row[headers.index("ACCELERATORS FREE/TOTAL")] == "10.25/11.75 (0.5 quota held)"
    assert row[headers.index("VENDORS (free/total)")] == "nvidia 10.25/11.75"
