"""Cordons in Kubernetes mode: the MemberCluster's spec holds them (server/cordons.py says what a cordon does).

`spec.cordoned: true` takes the cluster out of scheduling, with `cordonReason`, `cordonedBy` and `cordonedAt`
saying why, who and when. `federator cordon` (gRPC) writes them; an operator may as well:

    kubectl patch mc east-1 --type merge -p '{"spec":{"cordoned":true,"cordonReason":"driver upgrade"}}'

and the federator reads them back every few seconds (backends/kube/member_clusters.py). A cordon written by hand
without `cordonedBy` is shown as by "kubectl".

A drain (server/drains.py) is `spec.drain: true`, with `drainReason`, `drainedBy` and `drainedAt`, written by
`federator drain` or by hand as a cordon is:

    kubectl patch mc east-1 --type merge -p '{"spec":{"drain":true,"drainReason":"hardware swap"}}'

`spec.drainSurgeSeconds` (1 to 86400) is the drain's surge bound (server/drain_surge.py) when its operator set one
(`federator drain --surge-seconds`); absent, the default (10 minutes).

A maintenance window (server/maintenance_windows.py) is a cordon with `spec.cordonFrom` and `spec.cordonUntil`
(RFC 3339; either may be left out: from now, until uncordoned), written by `federator cordon --from --until` or by
hand; the cordon holds only between them, and the federator removes it at cordonUntil. A cordonFrom or cordonUntil
that is not a time, or a cordonUntil not after cordonFrom, is left out (said in the log): the cordon holds from
now, or until uncordoned, never less than asked.

A drain cordons the cluster: `spec.drain: true` without `spec.cordoned` holds a cordon of the drain's words, and
`federator uncordon` removes both. The federator's own MemberCluster writes patch spec.region and
spec.labels only, so they never clear a cordon.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from federator.backends.kube.api import MEMBER_CLUSTERS, KubeApi, KubeError, NotFoundError
from federator.backends.kube.resources import member_cluster, parse_timestamp
from federator.model.cordon import MAX_SURGE_SECONDS, SURGE_SECONDS, Cordon, Drain, surge_problem
from federator.store.errors import StoreUnavailable
from federator.timestamps import utc_seconds

log = logging.getLogger("federator.kube")

BY_HAND = "kubectl"
"""Who a cordon set on the MemberCluster without `cordonedBy` is shown as by."""


def cordon_of(spec: Mapping[str, Any], *, known: Cordon | None, now: float) -> Cordon | None:
    """The cordon a MemberCluster's spec holds, if it holds one (a drain holds one: module docstring); `known`
    (the one held already) keeps its times when the spec gives none."""
    drain = drain_of(spec, known=known.drain if known is not None else None, now=now)
    if spec.get("cordoned") is not True:
        return None if drain is None else Cordon(drain.by, drain.at, drain.reason, drain)
    at = parse_timestamp(spec.get("cordonedAt")) or (known.at if known is not None else now)
    window_from, window_until = window_of(spec) if drain is None else (0.0, 0.0)  # a drain holds now
    return Cordon(str(spec.get("cordonedBy") or BY_HAND)[:253], at, str(spec.get("cordonReason") or "")[:256], drain,
                  window_from, window_until)


def window_of(spec: Mapping[str, Any]) -> tuple[float, float]:
    """A cordon's maintenance window from spec.cordonFrom and spec.cordonUntil (0: none); what is not a time, or an
    end not after the start, is left out, said in the log (module docstring)."""
    out = []
    for field in ("cordonFrom", "cordonUntil"):
        value = spec.get(field)
        seconds = parse_timestamp(value)
        if value not in (None, "") and not seconds:
            log.warning("MemberCluster spec.%s %r: not an RFC 3339 time; left out", field, str(value)[:80])
        out.append(seconds)
    if out[0] and out[1] and out[1] <= out[0]:
        log.warning("MemberCluster spec.cordonUntil %s is not after spec.cordonFrom %s; the cordon holds until "
                    "uncordoned", utc_seconds(out[1]), utc_seconds(out[0]))
        out[1] = 0.0
    return out[0], out[1]


def drain_of(spec: Mapping[str, Any], *, known: Drain | None, now: float) -> Drain | None:
    """The drain a MemberCluster's spec holds, if it holds one."""
    if spec.get("drain") is not True:
        return None
    at = parse_timestamp(spec.get("drainedAt")) or (known.at if known is not None else now)
    return Drain(str(spec.get("drainedBy") or BY_HAND)[:253], at, str(spec.get("drainReason") or "")[:256],
                 surge_of(spec, known=known))


def surge_of(spec: Mapping[str, Any], *, known: Drain | None) -> float:
    """A drain's surge bound from spec.drainSurgeSeconds: absent, the one held already (a CRD older than the field
    prunes it from the object, not from this federator's memory) or the default; out of bounds (the CRD's schema
    refuses that, an object written before it did not), the default, said in the log."""
    value = spec.get("drainSurgeSeconds")
    if value is None:
        return known.surge_seconds if known is not None else SURGE_SECONDS
    number = not isinstance(value, bool) and isinstance(value, int | float)
    if not number or surge_problem(float(value)):
        log.warning("MemberCluster spec.drainSurgeSeconds %r: must be a number of seconds from 1 to %g; the drain's "
                    "surge bound is the default, %g s", value, MAX_SURGE_SECONDS, SURGE_SECONDS)
        return SURGE_SECONDS
    return float(value)


def spec_of(cordon: Cordon | None) -> dict[str, Any]:
    """The spec fields of `cordon` (and its drain) as a merge patch: None removes a field."""
    spec: dict[str, Any] = {"cordoned": None, "cordonReason": None, "cordonedBy": None, "cordonedAt": None,
                            "cordonFrom": None, "cordonUntil": None, "drain": None, "drainReason": None,
                            "drainedBy": None, "drainedAt": None, "drainSurgeSeconds": None}
    if cordon is not None:
        spec.update({"cordoned": True, "cordonReason": cordon.reason or None, "cordonedBy": cordon.by,
                     "cordonedAt": utc_seconds(cordon.at),
                     "cordonFrom": utc_seconds(cordon.window_from) if cordon.window_from else None,
                     "cordonUntil": utc_seconds(cordon.window_until) if cordon.window_until else None})
    if cordon is not None and cordon.drain is not None:
        spec.update({"drain": True, "drainReason": cordon.drain.reason or None, "drainedBy": cordon.drain.by,
                     "drainedAt": utc_seconds(cordon.drain.at),
                     # only an operator's own bound: the default stays the federator's, not written into objects
                     "drainSurgeSeconds": cordon.drain.surge_seconds
                     if cordon.drain.surge_seconds != SURGE_SECONDS else None})
    return spec


class KubeCordonStore:
    """CordonStore over the MemberClusters of the host cluster."""

    def __init__(self, api: KubeApi, clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.clock = clock

    def put(self, cluster: str, cordon: Cordon | None) -> None:
        spec = spec_of(cordon)
        try:
            try:
                written = self.api.patch(MEMBER_CLUSTERS, cluster, {"spec": spec})
            except NotFoundError:
                if cordon is None:
                    return  # no object: nothing holds a cordon
                # cordoned before its agent ever connected: the object the federator will fill in when it does
                body = member_cluster(cluster, region="", labels={})
                del body["spec"]["region"]
                body["spec"].update({k: v for k, v in spec.items() if v is not None})
                written = self.api.create(MEMBER_CLUSTERS, body)
        except KubeError as exc:
            raise StoreUnavailable(f"MemberCluster {cluster}: {exc}") from exc
        if spec["drain"] and (written.get("spec") or {}).get("drain") is not True:
            # A CRD older than spec.drain (Helm does not upgrade CRDs) prunes it without a word: the drain would
            # be gone at the next read, its jobs left where they are.
            raise StoreUnavailable(f"MemberCluster {cluster}: spec.drain was not kept, as the MemberCluster CRD "
                                   f"predates it (apply the chart's crds/memberclusters.yaml); the cluster's "
                                   f"cordon was written")
        kept = written.get("spec") or {}
        if any(spec[k] is not None and kept.get(k) is None for k in ("cordonFrom", "cordonUntil")):
            # The same for a window: a CRD older than it would make it a cordon now, with no end.
            try:  # the cordon it did write is taken back: the caller is told nothing changed
                self.api.patch(MEMBER_CLUSTERS, cluster, {"spec": spec_of(None)})
            except KubeError as exc:
                log.warning("MemberCluster %s: taking back the cordon its window was not kept with: %s", cluster, exc)
            raise StoreUnavailable(f"MemberCluster {cluster}: spec.cordonFrom and spec.cordonUntil were not kept, as "
                                   "the MemberCluster CRD predates them (apply the chart's crds/memberclusters.yaml); "
                                   "the cluster was not cordoned")
        if spec["drainSurgeSeconds"] is not None and (written.get("spec") or {}).get("drainSurgeSeconds") is None:
            log.warning("MemberCluster %s: spec.drainSurgeSeconds was not kept, as the MemberCluster CRD predates it "
                        "(apply the chart's crds/memberclusters.yaml): this federator keeps the drain's surge bound "
                        "of %g s until it restarts, then the default", cluster, spec["drainSurgeSeconds"])

    def load(self, known: Mapping[str, Cordon] | None = None) -> dict[str, Cordon]:
        try:
            listed = self.api.list(MEMBER_CLUSTERS)
        except KubeError as exc:
            raise StoreUnavailable(f"listing MemberClusters: {exc}") from exc
        return self.held_in(listed.get("items") or [], known)

    def held_in(self, members: Iterable[Mapping[str, Any]],
                known: Mapping[str, Cordon] | None = None) -> dict[str, Cordon]:
        """The cordons these MemberCluster objects hold (a listing made for something else serves too)."""
        now, known = self.clock(), known or {}
        held: dict[str, Cordon] = {}
        for obj in members:
            name = str((obj.get("metadata") or {}).get("name", ""))
            cordon = cordon_of(obj.get("spec") or {}, known=known.get(name), now=now)
            if name and cordon is not None:
                held[name] = cordon
        return held

__all__ = ["BY_HAND", "KubeCordonStore", "cordon_of", "drain_of", "spec_of", "surge_of", "window_of"]
