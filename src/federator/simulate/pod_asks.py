"""What a pod CSV's `gpu_spec` asks for, over the fleet it is simulated on: models of any vendor.

A pod CSV names models only (`V100M16|V100M32`, `Ascend910B`), never a vendor or a resource. Read as the
one-count form (`nvidia.com/gpu` with those models), every pod was an NVIDIA ask, so a trace asking for
`Ascend910B` waited for ever beside idle Ascends, silently (outside QA, planners P6). Here each name is
looked up in the fleet's pools (a model, or its catalog family) and in the accelerator catalog; a pod that
may use a pool of another vendor than the one-count form's (nvidia) asks by alternatives (`spec.accelerators`,
one per name, any vendor), as a job file does; a pod whose every candidate pool is NVIDIA's keeps the
one-count form, so NVIDIA-only traces and fleets simulate exactly as before. A name that no pool of the fleet
and no model or vendor of the catalog knows is refused, naming the row and the column: it could never run.

An empty `gpu_spec` is any accelerator: of any vendor the fleet has. A catalog vendor's name (`huawei`)
asks for any model of that vendor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from federator.backends.sim.fleet import ClusterSpec
from federator.catalog import catalog
from federator.model.accelerator import DEFAULT_VENDOR, AcceleratorAlternative, accepts_model


class AskError(ValueError):
    """A `gpu_spec` name nothing knows; the message names the value (the caller names the row and column)."""


@dataclass(frozen=True, slots=True)
class FleetModels:
    """The (vendor, model, family) of every accelerator pool of a fleet, as the simulated clusters name them."""

    pools: frozenset[tuple[str, str, str]]
    # answers by (names, milli): a trace of 100,000 pods repeats a few dozen asks
    _asked: dict[tuple[tuple[str, ...], int], tuple[tuple[str, ...], tuple[AcceleratorAlternative, ...]]] = \
        field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, fleet: Mapping[str, ClusterSpec]) -> FleetModels:
        cat = catalog()
        seen: set[tuple[str, str]] = {(n.vendor, n.accelerator_model) for c in fleet.values() for n in c.nodes
                                      if n.accelerator_model and n.accelerators}
        pools = set()
        for vendor, model in seen:
            entry = cat.describe_model(model, vendor)  # as backends/sim/nodes.py names the pool
            pools.add((entry.vendor, model, entry.family))
        return cls(frozenset(pools))

    def vendors_of(self, name: str) -> set[str]:
        """The vendors of the fleet's pools `name` selects (by model or family), else of the catalog's models it
        selects; a catalog vendor's own name is that vendor. Empty: nothing knows the name."""
        cat = catalog()
        if cat.vendor(name) is not None:
            return {name}
        found = {v for v, model, family in self.pools if accepts_model(name, model, family)}
        if found:
            return found
        generic = cat.vendor_of_generic(name)
        if generic:
            return {generic}
        return {m.vendor for m in cat.models() if accepts_model(name, m.name, m.family)}

    def ask(self, names: tuple[str, ...], milli: int) -> tuple[tuple[str, ...], tuple[AcceleratorAlternative, ...]]:
        """(models for the one-count form, alternatives) for a pod of `milli` per replica asking `names` (() =
        any): one of the two is empty. AskError for a name nothing knows."""
        key = (names, milli)
        if key not in self._asked:
            self._asked[key] = self._ask(names, milli)
        return self._asked[key]

    def _ask(self, names: tuple[str, ...], milli: int) -> tuple[tuple[str, ...], tuple[AcceleratorAlternative, ...]]:
        vendors: set[str] = set()
        for name in names:
            got = self.vendors_of(name)
            if not got:
                raise AskError(f"{name!r} is a model no pool of the fleet and no entry of the accelerator catalog "
                               f"knows (the fleet has: {_listed(m for _, m, _ in self.pools)}; a catalog "
                               "vendor's name asks for any of its models)")
            vendors |= got
        if not names:
            vendors = {v for v, _, _ in self.pools}
        cat = catalog()
        if vendors <= {DEFAULT_VENDOR}:  # `nvidia` among them: any NVIDIA model
            return ((), ()) if any(cat.vendor(n) is not None for n in names) else (names, ())
        alts = tuple(AcceleratorAlternative(milli, vendor=name) if cat.vendor(name) is not None
                     else AcceleratorAlternative(milli, model=name) for name in names)
        return (), alts or (AcceleratorAlternative(milli),)


def _listed(models: Iterable[str], limit: int = 12) -> str:
    names = sorted(set(models))
    more = f", and {len(names) - limit} more" if len(names) > limit else ""
    return (", ".join(names[:limit]) + more) or "no accelerators"


__all__ = ["AskError", "FleetModels"]
