"""A MemberCluster's accelerator totals are whole-device equivalents, as `federator get clusters` says them (F7).

`kubectl get mc` showed Accelerators-Total 26 for 8 whole H100s and one H100 in MIG mixed mode (14 x 1g.10gb +
4 x 3g.40gb): every partition counted as a GPU. It is 11.75 now, a number the CRD must take (an integer field
would have the API server refuse the whole status), and the per-model rows say "partitions".
"""

from __future__ import annotations

from typing import Any

import yaml

from federator.backends.kube.resources import member_cluster_status
from federator.model import AcceleratorPool, ClusterCapacity, ClusterState

from support import ROOT

H100 = "NVIDIA-H100-80GB-HBM3"


def _status_schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "deploy" / "helm" / "federator" / "crds" / "memberclusters.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["status"])


def _mistyped(value: Any, schema: dict[str, Any], where: str = "status") -> list[str]:
    """The values of `value` whose type its schema refuses (the API server refuses the whole status then)."""
    kind = schema.get("type")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return [m for k, v in value.items() if k in props and v is not None
                for m in _mistyped(v, props[k], f"{where}.{k}")]
    if isinstance(value, list):
        return [m for v in value for m in _mistyped(v, schema.get("items") or {}, f"{where}[]")]
    ok = {"integer": isinstance(value, int), "number": isinstance(value, (int, float)),
          "string": isinstance(value, str), "boolean": isinstance(value, bool)}.get(str(kind), True)
    return [] if ok else [f"{where}: {value!r} is not {kind}"]


def _mig(profile: str, partitions: int, unit_milli: int) -> AcceleratorPool:
    hist = [0] * (partitions + 1)
    hist[partitions] = 1
    return AcceleratorPool(f"{H100}-MIG-{profile}", tuple(hist), partitions, partitions, vendor="nvidia",
                           sharing="MIG", unit_milli=unit_milli)


def test_mig_partitions_count_as_their_share_and_the_crd_takes_the_fraction() -> None:
    whole = AcceleratorPool(H100, (0,) * 8 + (1,), 8, 8, vendor="nvidia", sharing="None")
    cap = ClusterCapacity(accelerator_pools=(whole, _mig("1g.10gb", 14, 125), _mig("3g.40gb", 4, 500)))
    status = member_cluster_status(state=ClusterState.READY, connected=True, last_report_at=1.0, capacity=cap)
    assert status["acceleratorsTotal"] == 11.75 and status["acceleratorsFree"] == 11.75
    assert status["vendors"] == "nvidia 11.75/11.75"
    assert f"{H100}-MIG-1g.10gb 14/14 partitions" in status["models"]
    assert [a.get("unitMilli") for a in status["accelerators"]] == [None, 125, 500]
    assert _mistyped(status, _status_schema()) == []


def test_whole_devices_stay_integers() -> None:
    whole = AcceleratorPool(H100, (0,) * 8 + (2,), 16, 16, vendor="nvidia", sharing="None")
    status = member_cluster_status(state=ClusterState.READY, connected=True, last_report_at=1.0,
                                   capacity=ClusterCapacity(accelerator_pools=(whole,)))
    assert status["acceleratorsTotal"] == 16 and isinstance(status["acceleratorsTotal"], int)


def test_left_out_devices_show_in_the_status_as_get_clusters_says_them() -> None:
    """The MemberCluster status said nothing of the devices an agent leaves out, so `kubectl get mc -o wide` showed a
    cluster offering 8 of its 16 GPUs with no reason; `federator get clusters -o wide` said it (LEFT OUT)."""
    whole = AcceleratorPool(H100, (0,) * 8 + (1,), 8, 8, vendor="nvidia", sharing="None")
    left = (("huawei.com/Ascend910B3", "unsupported", 16), ("nvidia.com/gpu", "unlabelled", 8))
    status = member_cluster_status(state=ClusterState.READY, connected=True, last_report_at=1.0,
                                   capacity=ClusterCapacity(accelerator_pools=(whole,), left_out=left))
    assert status["leftOut"] == "huawei.com/Ascend910B3 16 unsupported, nvidia.com/gpu 8 unlabelled"
    assert _mistyped(status, _status_schema()) == []
    assert "leftOut" in _status_schema()["properties"]
    # none left out: None, which the status merge patch reads as "remove", so a label added later clears it
    cleared = member_cluster_status(state=ClusterState.READY, connected=True, last_report_at=1.0,
                                    capacity=ClusterCapacity(accelerator_pools=(whole,)))
    assert cleared["leftOut"] is None
