"""Why the regions a spread job's `minRegions` misses cannot host one of its replicas: each cluster's own words.

Why: "replicas must span 2 regions; only 1 can host one now (west)" left the user to guess whether east had no
L40S at all, served no LeaderWorkerSet, or was full, and "now" suggested that waiting would help (outside QA, an
ML user, F9); a cordon that broke the span was not named either. The filters said it already, per cluster, as
they say it for any job no cluster takes: this puts their words after the count. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from federator.model import ClusterState, Reason
from federator.scheduler.snapshot import Txn

SHOWN = 3
"""Clusters whose words are given; the rest are counted."""


def regions_why(txn: Txn, rejected: Mapping[str, Reason], counted: set[str]) -> str:
    """"; <region>: <why>" for the clusters of the regions not in `counted` (those with a seed or a running part)."""
    out = sorted(f"{c.region}: {rejected[c.name].message}" if c.name in rejected else
                 f"{c.region}: {c.name} is {c.state}" for c in txn.clusters()
                 if c.region not in counted and (c.name in rejected or c.state is not ClusterState.READY))
    if not out:
        return ""
    more = f"; and {len(out) - SHOWN} more clusters" if len(out) > SHOWN else ""
    return "; " + "; ".join(out[:SHOWN]) + more


__all__ = ["regions_why"]
