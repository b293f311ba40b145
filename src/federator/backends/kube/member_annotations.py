"""What the federator keeps in its own annotations of the MemberCluster objects (unconfirmed cancels, quarantines),
read back from a listing. An annotation, not a status field: Helm never upgrades CRDs, and an older MemberCluster
CRD would prune a new field without a word; an annotation holds on any CRD."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from federator.backends.kube.api import MEMBER_CLUSTERS, KubeApi, KubeError, NotFoundError
from federator.backends.kube.resources import member_cluster
from federator.store.errors import StoreUnavailable

log = logging.getLogger("federator.kube")

T = TypeVar("T")


def decoded(members: Iterable[Mapping[str, Any]], annotation: str, decode: Callable[[str], T],
            what: str) -> dict[str, T]:
    """Each listed MemberCluster's `annotation`, decoded; one that cannot be read (ValueError) is said and skipped,
    as `what` ("a quarantine", "a record of cancels")."""
    out: dict[str, T] = {}
    for obj in members:
        meta = obj.get("metadata") or {}
        name, text = str(meta.get("name", "")), (meta.get("annotations") or {}).get(annotation)
        if not name or not text:
            continue
        try:
            out[name] = decode(str(text))
        except ValueError as exc:
            log.warning("MemberCluster %s: annotation %s is not %s (%s); ignored", name, annotation, what, exc)
    return out


def write(api: KubeApi, cluster: str, annotation: str, value: str | None, *, recreate: bool, failed: str) -> None:
    """Set (or, with None, remove: a merge patch's null) the cluster's `annotation`. A MemberCluster that does not
    exist is made to hold it when `recreate` (its spec filled in by the controller's next write, as after a cordon);
    StoreUnavailable, saying what `failed`, when the API server would not take it."""
    try:
        try:
            api.patch(MEMBER_CLUSTERS, cluster, {"metadata": {"annotations": {annotation: value}}})
        except NotFoundError:
            if value is None or not recreate:
                return  # nothing to keep, or a cluster whose object an operator deleted: forgotten with it
            body = member_cluster(cluster, region="", labels={})
            del body["spec"]["region"]
            body["metadata"]["annotations"] = {annotation: value}
            api.create(MEMBER_CLUSTERS, body)
    except KubeError as exc:
        raise StoreUnavailable(f"MemberCluster {cluster}: {failed}: {exc}") from exc


__all__ = ["decoded", "write"]
