"""`spec.prefer: cheapest`: price decides among the clusters that fit (outside migration QA, M11).

Why its own module: SkyPilot picks the cheapest offer by default, and its users moving here found price only one
term of the operator's policy (the Price score, weighted with fragmentation, scarcity, locality ...), which a job
could not weigh. This asks nothing of the policy: the filters, quotas, room and the job's own region asks still
bound where it may go; among the clusters that pass, the one with the lowest accelerator-hour (the cluster label
federator.io/price-per-accelerator-hour) comes first, the policy's ranking breaking ties, and a cluster without a
price after every priced one (an unknown price is not a cheap one).

- A training gang (cycle.py `_place_one`): the cheapest cluster that fits it whole.
- An inference job (spread.py `tiers`): each tier it fills in order is cut into tiers of one price, cheapest first,
  so replicas fill the cheapest clusters that fit before any dearer one (the policy's spread evens replicas over a
  tier); within a weighted region (weights.py) the same order.

Pure: it reads the clusters of the transaction the cycle already holds, one sort of the names already ranked.
"""

from __future__ import annotations

from federator.model import JobSpec, Preference
from federator.scheduler.snapshot import Txn


def wants_cheapest(spec: JobSpec) -> bool:
    return spec.prefer is Preference.CHEAPEST


def _price_key(txn: Txn, name: str) -> tuple[bool, float]:
    price = txn.get(name).price_per_accelerator_hour
    return (price is None, price if price is not None else 0.0)


def by_price(names: list[str], txn: Txn) -> list[str]:
    """`names` (the policy's ranking, best first) cheapest first; a stable sort, so the policy breaks ties."""
    return sorted(names, key=lambda n: _price_key(txn, n))


def price_tiers(names: list[str], txn: Txn) -> list[list[str]]:
    """`names` cut into tiers of one price (unpriced last, together), cheapest first, each in the policy's order."""
    out: list[list[str]] = []
    last: tuple[bool, float] | None = None
    for n in by_price(names, txn):
        key = _price_key(txn, n)
        if key != last:
            out.append([])
            last = key
        out[-1].append(n)
    return out


__all__ = ["by_price", "price_tiers", "wants_cheapest"]
