"""What the federator keeps in its own annotations of the MemberCluster objects (unconfirmed cancels, quarantines),
read back from a listing. An annotation, not a status field: Helm never upgrades CRDs, and an older MemberCluster
CRD would prune a new field without a word; an annotation holds on any CRD."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

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


__all__ = ["decoded"]
