"""Shrinking a placement's workload in place (agent.proto, Resize): which kinds can, and the patch that does it.

Why a module: the agent lists the "resize" feature in its Hello only because every placement the federator may
resize runs as a kind this module can shrink. The federator resizes only parts of an inference job without
spec.workload (server/scaling.py refuses to scale the others), and the agent makes every such part a Deployment
(workloads/registry.py, `default_object`). A Deployment or a StatefulSet shrinks by its `spec.replicas` (a
StatefulSet stops its highest ordinals): the agent patches that and the replica annotation the agent reads its
placement's count from (`expected_pods`) in one merge patch, with the agent's record of what it rendered updated
to match (drift.py, `DriftGuard.resized`), so the drift guard keeps the new count rather than scaling it back,
after an agent restart too. Any other kind (a LeaderWorkerSet's groups, a Job) is answered
with why, and the federator replaces the part as it does for an agent without the feature.

Pure: the backend reads the object from its cache and sends the patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.backends.kube.workloads import GENERATION_LABEL, REPLICAS_ANNOTATION
from federator.backends.kube.workloads.adapter import expected_pods

RESIZABLE = frozenset({("apps/v1", "Deployment"), ("apps/v1", "StatefulSet")})
"""The kinds whose replicas shrink in place: the rest stop, and none of the others restarts."""


def resize_patch(obj: Mapping[str, Any], *, generation: int, replicas: int,
                 cluster: str) -> dict[str, Any] | str | None:
    """The merge patch that shrinks a placement's workload `obj` to `replicas`; None when there is nothing to do
    (another generation of the placement, a count not smaller than it runs); why not, when its kind cannot
    shrink in place. Checked in that order: a re-sync re-sends a Resize at the current count for every serving
    placement, a LeaderWorkerSet's too, and that one is a no-op, not a refusal."""
    meta = obj.get("metadata") or {}
    made_at = (meta.get("labels") or {}).get(GENERATION_LABEL)
    if made_at is not None and made_at != str(generation):
        return None  # fencing: a Resize of another generation of this placement is not this one's
    have = expected_pods(obj, default=int((obj.get("spec") or {}).get("replicas") or 0))
    if not 0 < replicas < have:
        return None
    if (obj.get("apiVersion"), obj.get("kind")) not in RESIZABLE:
        return (f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')} on {cluster or 'this member'} "
                "cannot shrink in place (only a Deployment or a StatefulSet is resized)")
    return {"metadata": {"annotations": {REPLICAS_ANNOTATION: str(replicas)}}, "spec": {"replicas": replicas}}


__all__ = ["RESIZABLE", "resize_patch"]
