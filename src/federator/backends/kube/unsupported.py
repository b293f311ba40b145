"""Accelerators the agent does not offer because their units are not chips: counted, and said once per node.

Why: Huawei's static vNPU templates (`huawei.com/Ascend310P-2c`, a share of one chip's AI cores) and HAMi's Ascend
devices (`huawei.com/Ascend910B3`, shared by memory) are neither whole chips nor a sharing mode the resource model
has. The agent used to say nothing of them (no pool, no warning), and a catalog that listed a template's resource
made each vNPU a whole chip of the plain chips' pool, so a 10-NPU job asked for a resource no node had ten of
(outside QA, V2). They are now left out of the report (devices.py), and this module keeps that from being silent:
the agent's log says, once per node and resource, what they are, and the agent metric
`federator_agent_unsupported_accelerators{resource}` counts them. Like `unlabelled.py`'s count, it is not in the
capacity report: the contract's pools are what can be placed on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from federator.backends.kube.devices import UnsupportedDevices

log = logging.getLogger("federator.agent.kube")


class UnsupportedAccelerators:
    """The unsupported devices last seen, per resource, and the (node, resource) pairs already warned of."""

    def __init__(self) -> None:
        self._warned: set[tuple[str, str]] = set()
        self.by_resource: Mapping[str, int] = {}

    def seen(self, found: Iterable[UnsupportedDevices]) -> Mapping[str, int]:
        """Take the unsupported devices of every node now: warn of each (node, resource) not warned of while it
        stayed there (one gone and back is said again); return the counts."""
        counts: dict[str, int] = {}
        now: set[tuple[str, str]] = set()
        for u in found:
            counts[u.resource] = counts.get(u.resource, 0) + u.devices
            key = (u.node, u.resource)
            now.add(key)
            if key not in self._warned:
                log.warning("node %s has %d %s, which are %s: they are not offered to the federator, which has no "
                            "model of them (and never counts one as a chip); run whole chips there to offer them",
                            u.node, u.devices, u.resource, u.what)
        self._warned = now
        self.by_resource = counts
        return counts


__all__ = ["UnsupportedAccelerators"]
