"""How a job asks a hardware partition, said to a user who wrote the partition's own resource.

A MIG profile's resource (`nvidia.com/mig-1g.10gb`) or an Ascend static vNPU template's
(`huawei.com/Ascend910-5c.1cpu.16g`) is not a job's resource: the federator counts and bills a partition at its
worth of the whole device, so a job asks the whole device's resource and names the partition in
`acceleratorModels`, and the agent writes the partition's resource on the pods. A refusal of the partition's
resource that did not say so left the user with no way to find it (vendor QA vendqa61 V5). Pure: the two
resource-name patterns the kube agent discovers partitions by (backends/kube/devices.py `MIG_RESOURCE`,
backends/kube/vnpu.py `TEMPLATE_RESOURCE`), read here without importing the agent.
"""

from __future__ import annotations

import re

_MIG = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb)$")
_VNPU = re.compile(r"^(huawei\.com/Ascend(?:910|310P?))-(\d+c(?:\.[0-9a-z]+)*)$")


def partition_ask(resource: str) -> tuple[str, str] | None:
    """(the whole device's resource, the name to list in acceleratorModels) when `resource` is a partition's own:
    ("nvidia.com/gpu", "MIG-1g.10gb"), ("huawei.com/Ascend910", "vNPU-5c.1cpu.16g"); None for any other."""
    if m := _MIG.match(resource):
        return "nvidia.com/gpu", f"MIG-{m.group(1)}"
    if m := _VNPU.match(resource):
        return m.group(1), f"vNPU-{m.group(2)}"
    return None


def partition_hint(resource: str, count: object = 1) -> str:
    """"" or the sentence that says how to ask the partition whose own resource is `resource`, `count` of them."""
    ask = partition_ask(resource)
    if ask is None:
        return ""
    whole, model = ask
    return (f"{resource} is a partition's own resource, which the federator writes on the pods itself: ask "
            f"{whole}: {count} with spec.acceleratorModels: [{model}]")




TRAINJOB_WHOLE_DEVICES = ("a TrainJob's devices come from its runtime's resourcesPerNode, which the agent does not "
                          "rewrite, so it suits whole-device pools only (and AMD compute partitions, which "
                          "amd.com/gpu counts)")
"""Why a TrainJob may not name a partition: said by the submit check (server/templates.py) and by the agent at launch
(backends/kube/workloads/kubeflow.py `whole_devices_only`) alike, so here, where neither imports the other's side."""


__all__ = ["TRAINJOB_WHOLE_DEVICES", "partition_ask", "partition_hint"]
