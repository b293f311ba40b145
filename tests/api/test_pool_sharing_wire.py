"""A pool's sharing crosses the wire as the contract says, and a malformed one is refused."""

from __future__ import annotations

import pytest

from federator.api import convert
from federator.api.convert import WireError
from federator.model import AcceleratorPool, ClusterCapacity


def _report(**pool_fields: object):  # type: ignore[no-untyped-def]
    pool = AcceleratorPool("NVIDIA-H100-80GB-HBM3-MIG-3g.40gb", (0, 4), 4, 4, **pool_fields)  # type: ignore[arg-type]
    return convert.capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,)))


def test_sharing_and_partition_worth_round_trip() -> None:
    (pool,) = convert.capacity_from_pb(_report(sharing="MIG", unit_milli=500)).accelerator_pools
    assert (pool.sharing, pool.unit_milli) == ("MIG", 500)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"sharing": "Shared"}, r"accelerator_pools\[0\].sharing: 'Shared' is not one of"),
        (
            {"sharing": "MIG", "unit_milli": 0},
            r"accelerator_pools\[0\].unit_milli: a MIG pool's partition is worth 1..1000",
        ),
    ],
    ids=["unknown-sharing", "mig-without-worth"],
)
def test_a_malformed_sharing_is_refused_naming_the_field(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(WireError, match=problem):
        convert.capacity_from_pb(_report(**fields))
