"""A pool's catalog family crosses the wire (agent.proto AcceleratorPool.family): sent, filled in from
the federator's catalog when an agent leaves it out, refused when malformed."""

from __future__ import annotations

import pytest

from federator.api import convert
from federator.api.convert import WireError
from federator.model import AcceleratorPool, ClusterCapacity


def _report(model: str, **fields: object):  # type: ignore[no-untyped-def]
    pool = AcceleratorPool(model, (0, 2), 16, 16, vendor="huawei", **fields)  # type: ignore[arg-type]
    return convert.capacity_to_pb(ClusterCapacity(accelerator_pools=(pool,)))


def test_the_family_an_agent_sends_is_kept() -> None:
    (pool,) = convert.capacity_from_pb(_report("Ascend910B3", family="Ascend910B")).accelerator_pools
    assert (pool.accelerator_model, pool.family) == ("Ascend910B3", "Ascend910B")


def test_an_agent_that_sends_none_gets_the_catalogs_family_for_exactly_that_model() -> None:
    (pool,) = convert.capacity_from_pb(_report("Ascend910B3")).accelerator_pools
    assert pool.family == "Ascend910B"
    (pool,) = convert.capacity_from_pb(_report("910B3")).accelerator_pools  # not a catalog name: no guess
    assert pool.family == ""


@pytest.mark.parametrize("family", ["Ascend 910B", "-x", "x" * 65])
def test_a_malformed_family_is_refused_naming_the_field(family: str) -> None:
    with pytest.raises(WireError, match=r"accelerator_pools\[0\]\.family: must be a model family name"):
        convert.capacity_from_pb(_report("Ascend910B3", family=family))
