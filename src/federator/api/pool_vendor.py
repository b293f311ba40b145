"""The vendor of a pool an agent reports: checked against the federator's catalog, never taken on trust.

A pool's vendor decides which jobs it serves: the one-count form (`nvidia.com/gpu: 8`) runs on its resource's
vendor's pools only, quotas and usage count by vendor. An agent that left the field empty had its pool taken for
NVIDIA, and one that wrote "NVIDIA" got a vendor of its own (outside QA, vendors V5): a CUDA job was sent to an
Iluvatar pool, or never to an NVIDIA one. So, as agent.proto says on `AcceleratorPool.vendor`:

- a vendor is lower case (checked with the other names, server/validation.py);
- a resource name (or DRA DeviceClass) the catalog gives a vendor belongs to that vendor: a pool naming
  another vendor is refused (`malformed`, naming the field);
- an empty vendor is the one the catalog gives the pool's resource_name; with no resource_name either (an
  agent from before vendors), the one of the catalog's model of that name; when neither says, the report is
  refused rather than guessed.
"""

from __future__ import annotations

from federator.api.v1 import agent_pb2
from federator.catalog import Catalog


class PoolVendorError(ValueError):
    """A pool whose vendor the federator cannot take: the message names the field (a WireError at the edge)."""


def pool_vendor(cat: Catalog, pool: agent_pb2.AcceleratorPool, where: str) -> str:
    """The vendor of a reported pool, or PoolVendorError naming `where`.vendor and why."""
    owner = cat.vendor_of_pool_resource(pool.resource_name)
    if pool.vendor:
        if owner is not None and owner != pool.vendor:
            raise PoolVendorError(
                f"{where}.vendor: {pool.vendor!r} contradicts resource_name {pool.resource_name!r}, which the "
                f"federator's accelerator catalog gives {owner!r} (a resource name belongs to one vendor's device "
                f"plugin): report the pool as {owner!r}, or the resource its own device plugin advertises")
        return pool.vendor
    if owner is not None:
        return owner
    if not pool.resource_name:
        entry = cat.find_model(pool.accelerator_model)
        if entry is not None:
            return entry.vendor
    said = f"resource_name {pool.resource_name!r}" if pool.resource_name else \
        f"accelerator_model {pool.accelerator_model!r} (with no resource_name)"
    raise PoolVendorError(
        f"{where}.vendor: is required: the federator's accelerator catalog cannot tell the vendor from {said}; "
        "name it (lower case, such as nvidia, or the vendor's own name for one the catalog lacks)")


__all__ = ["PoolVendorError", "pool_vendor"]
