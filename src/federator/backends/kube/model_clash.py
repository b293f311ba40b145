"""One pool per model name in a capacity report: a second vendor's pool under a name already reported is left out.

Why: the federator takes one pool per model name in a report (agent.proto `AcceleratorPool.accelerator_model`, "unique
within a report"; security/limits.py `check_capacity` refuses a report naming one twice, whatever the vendors). A
member with one mislabelled or custom-catalog node (an AMD device plugin's node labelled with an NVIDIA product name,
say) made every report of the member refused: its capacity froze at the last good report, and stale numbers kept
drawing work (outside QA new60, N4). The agent now reports one of the clashing pools (the vendor the catalog says the
model is, then the most devices, then the vendor first by name: the same one whatever the order nodes are listed in),
says the other in the report's `left_out` (reason "unsupported", the one reason for devices it cannot offer as their
own model that every federator takes), and warns once per clash in its log, naming both vendors and what to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from federator.catalog import catalog
from federator.model import AcceleratorPool

log = logging.getLogger("federator.agent.kube")


Pools = tuple[AcceleratorPool, ...]


def one_pool_per_model(pools: Iterable[AcceleratorPool]) -> tuple[Pools, Pools]:
    """(kept, left out): of pools whose model names match without case, the one of the vendor the accelerator
    catalog says the model is (an AMD node labelled NVIDIA-H100-80GB-HBM3 loses to NVIDIA's, however many of them
    there are: new60b N11), then of the most devices, then of the vendor first by name, is kept; the kept keep
    their order."""
    pools = tuple(pools)
    best: dict[str, AcceleratorPool] = {}

    def rank(p: AcceleratorPool) -> tuple[bool, int, str]:
        entry = catalog().find_model(p.accelerator_model)
        return (entry is not None and entry.vendor != p.vendor, -p.total_accelerators, p.vendor)

    for p in pools:
        key = p.accelerator_model.casefold()
        held = best.get(key)
        if held is None or rank(p) < rank(held):
            best[key] = p
    kept = tuple(p for p in pools if best[p.accelerator_model.casefold()] is p)
    return kept, tuple(p for p in pools if best[p.accelerator_model.casefold()] is not p)


class ModelClashes:
    """The clashes last seen, each warned of once while it stays (one gone and back is said again)."""

    def __init__(self) -> None:
        self._warned: set[tuple[str, str]] = set()
        self.by_resource: Mapping[str, int] = {}

    def seen(self, kept: Iterable[AcceleratorPool], left: Iterable[AcceleratorPool]) -> Mapping[str, int]:
        """Warn of each left-out pool not warned of; return the devices left out per resource name."""
        owner = {p.accelerator_model.casefold(): p for p in kept}
        counts: dict[str, int] = {}
        now: set[tuple[str, str]] = set()
        for p in left:
            resource = p.resource_name or f"{p.vendor} devices"
            counts[resource] = counts.get(resource, 0) + p.total_accelerators
            key = (p.vendor, p.accelerator_model)
            now.add(key)
            if key not in self._warned:
                other = owner.get(p.accelerator_model.casefold())
                log.warning("%d %s devices of vendor %s are labelled with the model name %s, which vendor %s's "
                            "%d devices have too: the federator takes one pool per model name, so they are not "
                            "offered; fix the nodes' labels or give the vendor's model a name of its own in the "
                            "accelerator catalog", p.total_accelerators, resource, p.vendor, p.accelerator_model,
                            other.vendor if other is not None else "another",
                            other.total_accelerators if other is not None else 0)
        self._warned = now
        self.by_resource = counts
        return counts


__all__ = ["ModelClashes", "one_pool_per_model"]
