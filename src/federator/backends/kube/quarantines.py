"""Quarantines in Kubernetes mode: an annotation of the cluster's MemberCluster (server/quarantine_store.py says
why they are kept, server/quarantine.py what a quarantine does).

Where: `federator.io/quarantine` on the MemberCluster, which the federator owns and patches already (no new object,
no new RBAC), holding `{"until": "<RFC 3339>", "reason": "..."}`:

    kubectl get mc acme-east -o jsonpath='{.metadata.annotations.federator\\.io/quarantine}'

An annotation rather than a status or spec field, as the record of cancels (cancel_records.py): Helm never
upgrades CRDs, and a MemberCluster CRD older than the field would prune it without a word. The federator reads it
at start only, from the listing that adopts the members (member_clusters.py), before the first cycle; to end a
quarantine early, `federator uncordon` (which removes the annotation), not kubectl. `until` is written rounded up
to the second: a kept quarantine never ends early for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from federator.backends.kube.api import MEMBER_CLUSTERS, KubeApi, KubeError
from federator.backends.kube.member_annotations import decoded, write
from federator.backends.kube.resources import parse_timestamp
from federator.model.quarantine import Held
from federator.store.errors import StoreUnavailable
from federator.timestamps import utc_seconds

ANNOTATION = "federator.io/quarantine"


def encode(held: Held) -> str:
    return json.dumps({"until": utc_seconds(math.ceil(held.until)), "reason": held.why}, sort_keys=True)


def decode(text: str) -> Held:
    """The quarantine an annotation holds; ValueError naming the field at fault."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"must be an object, got {type(value).__name__}")
    until = parse_timestamp(value.get("until"))
    if until <= 0:
        raise ValueError(f"until: must be an RFC 3339 time, got {str(value.get('until'))[:40]!r}")
    return Held(until, str(value.get("reason") or "")[:1024])


def held_in(members: Iterable[Mapping[str, Any]]) -> dict[str, Held]:
    """The quarantines these MemberCluster objects keep (a listing made for something else serves); one that
    cannot be read is said and skipped (the cluster is then as if never quarantined)."""
    return decoded(members, ANNOTATION, decode, "a quarantine")


class KubeQuarantineStore:
    """QuarantineStore (server/quarantine_store.py) over the MemberClusters of the host cluster."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api

    def put(self, cluster: str, held: Held | None) -> None:
        write(self.api, cluster, ANNOTATION, encode(held) if held is not None else None, recreate=True,
              failed="quarantine not kept")

    def load(self) -> dict[str, Held]:
        try:
            listed = self.api.list(MEMBER_CLUSTERS)
        except KubeError as exc:
            raise StoreUnavailable(f"listing MemberClusters: {exc}") from exc
        return held_in(listed.get("items") or [])


__all__ = ["ANNOTATION", "KubeQuarantineStore", "decode", "encode", "held_in"]
