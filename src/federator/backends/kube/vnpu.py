"""Huawei Ascend static vNPU templates: what one unit of a template's resource is worth of its chip.

Why: MindCluster's device plugin advertises a chip cut by `npu-smi` into static vNPUs as one resource per
template (``huawei.com/Ascend310P-2c``, ``huawei.com/Ascend910-4c``, ``huawei.com/Ascend310P-4c.3cpu.ndvpp``);
a pod asks for one unit and gets a hardware partition of that many of the chip's AI cores, with its share of
the memory, isolated like an NVIDIA MIG instance. Counted as chips, such units made a 310P pool eight chips bigger
(outside QA, V2); left out (0.11.0), the capacity was lost. The agent now offers each template on each chip model
as a partition pool, the way MIG profiles are (`devices.py`): model ``<chip>-vNPU-<template>``
(``Ascend310P3-vNPU-2c``), sharing ``MIG`` (the contract's hardware-partition value, agent.proto), and
``unit_milli`` = the template's AI cores / the chip's.

The chip's AI cores are not on the node (the chip label names the chip only), so they are catalog data: the
`aiCores` of the chip's model (`Ascend` + the label's value, accelerators.yaml), from CANN's platform data of each
SoC, which an operator's catalog file adds to or corrects (`--accelerator-catalog`) without a release. A chip whose
model has no `aiCores` keeps its vNPUs out of the report, said and counted as before (`unsupported.py`), never a
guessed share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from federator.model import MILLI

# huawei.com/Ascend910-4c, huawei.com/Ascend310P-2c.1cpu, huawei.com/Ascend310P-4c.4cpu.dvpp, ...-5c.1cpu.16g
TEMPLATE_RESOURCE = re.compile(r"^(huawei\.com/Ascend(?:910|310P?))-(\d+)c((?:\.[0-9a-z]+)*)$")
MARKER = "vNPU"  # in every vNPU pool's model: a job naming it asks for whole partitions (scheduler framework)

@dataclass(frozen=True, slots=True)
class Template:
    """One vNPU template's resource: the chip resource it is cut from, its AI cores and its name's rest."""

    resource: str  # huawei.com/Ascend310P-2c.1cpu
    chip_resource: str  # huawei.com/Ascend310P: the whole chip's resource (and the taint on its nodes)
    cores: int
    name: str  # 2c.1cpu: what follows the chip resource, the pool model's last part

    def unit_milli(self, chip_cores: int) -> int:
        """What one unit is worth of a whole chip of `chip_cores` AI cores (the catalog's `aiCores` of its model),
        in milli-chips; 0 when the chip's AI cores are unknown (0) or fewer than the template's (not a partition
        of that chip)."""
        if not 0 < self.cores <= chip_cores:
            return 0
        return max(1, self.cores * MILLI // chip_cores)

    def memory_mib(self) -> int:
        """The partition's memory where the template names it (``5c.1cpu.16g``: 16 GiB), else 0 (unknown)."""
        found = re.search(r"\.(\d+)g(?:\.|$)", self.name)
        return int(found.group(1)) * 1024 if found else 0


def template(resource: str) -> Template | None:
    """The vNPU template a resource name is, or None."""
    match = TEMPLATE_RESOURCE.match(resource)
    if not match:
        return None
    return Template(resource, match.group(1), int(match.group(2)), f"{match.group(2)}c{match.group(3)}")


def pool_model(chip: str, t: Template) -> str:
    """The pool model of a template on chip `chip` (the label's value: 310P3 -> 310P3-vNPU-2c; discovery then
    puts the catalog's prefix in front, Ascend310P3-vNPU-2c)."""
    return f"{chip}-{MARKER}-{t.name}"


__all__ = ["MARKER", "TEMPLATE_RESOURCE", "Template", "pool_model", "template"]
