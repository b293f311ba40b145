"""The agent's side of Dynamic Resource Allocation on its member: what it watches, and each placement's claim template.

Kept apart from `backend.py` (which runs placements) because DRA is its own
API group with its own life: the member may not serve `resource.k8s.io/v1`, or
its RBAC may not let the agent read it, and then there are simply no DRA pools
(`served`). Where it is on, the agent watches the ResourceSlices (the devices
drivers publish), the ResourceClaims (what is allocated) and the DeviceClasses
(what a claim may ask for), and gives each DRA placement one
ResourceClaimTemplate that its pods reference: created before the workload,
owned by it once the workload exists (so whoever deletes the workload deletes
the template), and deleted with the placement. The parsing is `dra.py` (pure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from federator.backends.kube import accelerators
from federator.backends.kube.accelerators import AcceleratorRequest
from federator.backends.kube.api import (
    DEVICE_CLASSES,
    RESOURCE_CLAIM_TEMPLATES,
    RESOURCE_CLAIMS,
    RESOURCE_SLICES,
    ConflictError,
    ForbiddenError,
    KubeApi,
    KubeError,
    NotFoundError,
    Obj,
)
from federator.backends.kube.devices import DeviceGroup
from federator.backends.kube.discovery import Discovery
from federator.backends.kube.informer import Informer
from federator.backends.kube.workloads import PLACEMENT_ANNOTATION, workload_labels, workload_name
from federator.model import Placement

log = logging.getLogger("federator.agent.kube")


def claim_template_name(placement_id: str) -> str:
    """The ResourceClaimTemplate of a DRA placement: the workload's name and a suffix."""
    return workload_name(placement_id) + accelerators.CLAIM_TEMPLATE_SUFFIX


class DraClaims:
    """DRA on one member, for the placements of one namespace (or the one each call names); off until `served`
    says the member has it."""

    def __init__(self, api: KubeApi, *, namespace: str, watch_timeout: int = 60) -> None:
        self.api = api
        self.namespace = namespace
        self.slices = Informer(api, RESOURCE_SLICES, name="resourceslices", watch_timeout=watch_timeout)
        self.claims = Informer(api, RESOURCE_CLAIMS, name="resourceclaims", watch_timeout=watch_timeout)
        self.device_classes = Informer(api, DEVICE_CLASSES, name="deviceclasses", watch_timeout=watch_timeout)
        self.on = False

    @property
    def informers(self) -> tuple[Informer, ...]:
        return (self.slices, self.claims, self.device_classes)

    def served(self) -> bool:
        """Blocking: whether the member serves resource.k8s.io/v1 and lets the agent read it (else: no DRA
        pools). Sets `on`."""
        try:
            self.api.list(RESOURCE_SLICES)
        except (NotFoundError, ForbiddenError) as exc:
            log.info("DRA off: cannot list resource.k8s.io/v1 resourceslices in %s (%s)", self.api.server, exc)
            self.on = False
        except KubeError as exc:
            log.warning("DRA off: listing resourceslices in %s failed: %s", self.api.server, exc)
            self.on = False
        else:
            self.on = True
        return self.on

    def groups(self, discovery: Discovery, nodes: Sequence[Obj], pods: Iterable[Obj]) -> list[DeviceGroup]:
        """The accelerators of every node, with the DRA devices where DRA is on."""
        if not self.on:
            return discovery.groups(nodes, pods)
        classes = [str((c.get("metadata") or {}).get("name", "")) for c in self.device_classes.cache.values()]
        return discovery.groups(nodes, pods, slices=self.slices.cache.values(), claims=self.claims.cache.values(),
                                device_classes=classes)

    async def create_template(self, placement: Placement, accelerator: AcceleratorRequest,
                              namespace: str | None = None) -> None:
        """The claim template the placement's pods reference, created before them, in the placement's namespace
        (`namespace`, else the agent's)."""
        namespace = namespace or self.namespace
        body = accelerators.claim_template(claim_template_name(placement.placement_id), namespace, accelerator,
                                           labels=workload_labels(placement),
                                           annotations={PLACEMENT_ANNOTATION: placement.placement_id})
        try:
            await asyncio.to_thread(self.api.create, RESOURCE_CLAIM_TEMPLATES, body, namespace)
        except ConflictError:
            pass  # a retried launch: it is there already

    async def own_template(self, placement: Placement, workload: Obj, namespace: str | None = None) -> None:
        """Make the workload own its claim template (in `namespace`, else the agent's), so deleting the workload
        (by anyone) deletes it."""
        meta = workload.get("metadata") or {}
        owner = {"apiVersion": workload.get("apiVersion"), "kind": workload.get("kind"), "name": meta.get("name"),
                 "uid": meta.get("uid"), "blockOwnerDeletion": False}
        try:
            await asyncio.to_thread(self.api.patch, RESOURCE_CLAIM_TEMPLATES, claim_template_name(
                placement.placement_id), {"metadata": {"ownerReferences": [owner]}},
                namespace or self.namespace)
        except KubeError as exc:  # the agent deletes it on cancel anyway
            log.warning("claim template of %s: setting its owner failed: %s", placement.placement_id, exc)

    async def delete_template(self, placement_id: str, namespace: str | None = None) -> None:
        """With the placement (where DRA is on; in its namespace, else the agent's): owned by the workload, the
        garbage collector removes it too; this is not to wait for it."""
        if self.on:
            await asyncio.to_thread(self.api.delete, RESOURCE_CLAIM_TEMPLATES, claim_template_name(placement_id),
                                    namespace or self.namespace)


__all__ = ["DraClaims", "claim_template_name"]
