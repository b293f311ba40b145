"""Accelerators the agent does not offer because their units are not chips: counted, and said once per node.

Why: Huawei's static vNPU templates (`huawei.com/Ascend310P-2c`, a share of one chip's AI cores) and HAMi's Ascend
devices (`huawei.com/Ascend910B3`, shared by memory) are neither whole chips nor a sharing mode the resource model
has. The agent used to say nothing of them (no pool, no warning), and a catalog that listed a template's resource
made each vNPU a whole chip of the plain chips' pool, so a 10-NPU job asked for a resource no node had ten of
(outside QA, V2). They are now left out of the report (devices.py), and this module keeps that from being silent:
the agent's log says, once per node and resource, what they are, and the agent metric
`federator_agent_unsupported_accelerators{resource}` counts them. Like `unlabelled.py`'s count, the report carries
it apart from the pools (agent.proto `CapacityReport.left_out`, reason `unsupported`), for the federator's side.
"""

from __future__ import annotations

import logging

from federator.backends.kube.devices import UnsupportedDevices
from federator.backends.kube.left_out import LeftOut

log = logging.getLogger("federator.agent.kube")


class UnsupportedAccelerators(LeftOut[UnsupportedDevices]):
    """The unsupported devices last seen, per resource, and the (node, resource) pairs already warned of."""

    def warn(self, u: UnsupportedDevices) -> None:
        log.warning("node %s has %d %s, which are %s: they are not offered to the federator, which has no "
                    "model of them (and never counts one as a chip); run whole chips there to offer them",
                    u.node, u.devices, u.resource, u.what)


__all__ = ["UnsupportedAccelerators"]
