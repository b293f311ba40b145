"""Accelerators the agent does not offer because no node label names their model: counted, and said once per node.

Why: a node whose device plugin advertises `nvidia.com/gpu` before GPU feature discovery has labelled it (or on a
node pool GFD does not run on) used to be a pool named `unknown`. Its pods could ask only for the resource, so
kube-scheduler put them on any other model's node while the unlabelled one idled (outside provider QA F3). Such
devices are now left out of the report (devices.py); this module keeps that from being silent: the agent's log
says, once per node and resource, which label is missing, and the agent metric
`federator_agent_unlabelled_accelerators{resource}` counts them, so a provider sees at join time why a new node
adds nothing. The count is not in the capacity report: the contract's pools are what can be placed on, and a
federator has nothing to do with devices it may not use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from federator.backends.kube.devices import UnlabelledDevices

log = logging.getLogger("federator.agent.kube")


class UnlabelledAccelerators:
    """The unlabelled devices last seen, per resource, and the (node, resource) pairs already warned of."""

    def __init__(self) -> None:
        self._warned: set[tuple[str, str]] = set()
        self.by_resource: Mapping[str, int] = {}

    def seen(self, found: Iterable[UnlabelledDevices]) -> Mapping[str, int]:
        """Take the unlabelled devices of every node now: warn of each (node, resource) not warned of while it
        stayed unlabelled (one labelled since and unlabelled again is said again); return the counts."""
        counts: dict[str, int] = {}
        now: set[tuple[str, str]] = set()
        for u in found:
            counts[u.resource] = counts.get(u.resource, 0) + u.devices
            key = (u.node, u.resource)
            now.add(key)
            if key not in self._warned:
                log.warning("node %s has %d %s but no %s label naming their model: they are not offered to the "
                            "federator (a pod could not be pinned to them) until the node is labelled (GPU feature "
                            "discovery, or the vendor's node labeller, running on it)", u.node, u.devices,
                            u.resource, u.missing_label)
        self._warned = now
        self.by_resource = counts
        return counts


__all__ = ["UnlabelledAccelerators"]
