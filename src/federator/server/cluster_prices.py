"""A member's price as the trust file bounds it: the label the scheduler reads, set at its Hello and at a reload.

Why its own module: `spec.prefer: cheapest` (scheduler/cheapest.py) sorts by a cluster's price label alone, and that
label was its agent's word, so a provider claiming 0.01 per accelerator-hour drew every such job of every tenant
(secqa61 M1). A provider's `minPrice`/`maxPrice` in the trust file (security/trust.py `Trust.priced_labels`) bound
the claim; this module applies them to the labels the federator keeps for the cluster (what the scheduler, the
Price score and `federator get clusters -o wide` read), logs a price taken other than claimed at WARNING, and
applies a reloaded trust file's bounds to live streams from the claim of their Hello.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from federator.model.cluster import CLAIMED_PRICE_LABEL, PRICE_LABEL, PRICE_LABELS
from federator.security.trust import Trust

log = logging.getLogger("federator.server")
PRICE_KEYS = (*PRICE_LABELS, CLAIMED_PRICE_LABEL)  # the labels the trust file's minPrice/maxPrice may rewrite


def priced(trust: Trust | None, *, cluster: str, issuer: str, labels: Mapping[str, str]) -> dict[str, str]:
    """`labels` (a Hello's, the provider label set) with the price its provider's bounds allow."""
    if trust is None:
        return dict(labels)
    out = trust.priced_labels(issuer, labels)
    if CLAIMED_PRICE_LABEL in out:
        log.warning("cluster %s claims a price of %s per accelerator-hour; the trust file's minPrice/maxPrice of "
                    "provider %s take it as %s", cluster, out[CLAIMED_PRICE_LABEL][:80], issuer, out[PRICE_LABEL])
    return out


def repriced(trust: Trust, *, cluster: str, issuer: str, kept: Mapping[str, str],
             hello: Mapping[str, str]) -> dict[str, str]:
    """The labels `kept` for a live stream's cluster with the price a reloaded trust file allows, from the claim
    of its Hello (`hello`, as the agent sent it): a lowered bound applies at once, a removed one gives the claim
    back. Every other label is kept as it is."""
    new = priced(trust, cluster=cluster, issuer=issuer, labels=hello)
    return {**{k: v for k, v in kept.items() if k not in PRICE_KEYS},
            **{k: v for k, v in new.items() if k in PRICE_KEYS}}


__all__ = ["PRICE_KEYS", "priced", "repriced"]
