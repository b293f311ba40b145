"""Accelerators the agent does not offer because no node label names their model: counted, and said once per node.

Why: a node whose device plugin advertises `nvidia.com/gpu` before GPU feature discovery has labelled it (or on a
node pool GFD does not run on) used to be a pool named `unknown`. Its pods could ask only for the resource, so
kube-scheduler put them on any other model's node while the unlabelled one idled (outside provider QA F3). Such
devices are now left out of the report (devices.py); this module keeps that from being silent: the agent's log
says, once per node and resource, which label is missing, and the agent metric
`federator_agent_unlabelled_accelerators{resource}` counts them, so a provider sees at join time why a new node
adds nothing. The count is in the capacity report too, apart from the pools (agent.proto `CapacityReport.left_out`,
reason `unlabelled`; `left_out.left_out_of`): the pools are what can be placed on, and the federator only shows it,
so that its operator, who may not run this agent, sees why the member offers less than its nodes hold.
"""

from __future__ import annotations

import logging

from federator.backends.kube.devices import UnlabelledDevices
from federator.backends.kube.left_out import LeftOut

log = logging.getLogger("federator.agent.kube")


class UnlabelledAccelerators(LeftOut[UnlabelledDevices]):
    """The unlabelled devices last seen, per resource, and the (node, resource) pairs already warned of."""

    def warn(self, u: UnlabelledDevices) -> None:
        log.warning("node %s has %d %s but no %s label naming their model: they are not offered to the "
                    "federator (a pod could not be pinned to them) until the node is labelled (GPU feature "
                    "discovery, or the vendor's node labeller, running on it)", u.node, u.devices,
                    u.resource, u.missing_label)


__all__ = ["UnlabelledAccelerators"]
