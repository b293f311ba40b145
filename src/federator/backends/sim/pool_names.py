"""What a fleet file's accelerator model stands for: a catalog model, or a partition pool named as a member names it.

Why: a simulated member must report a pool as a real member of that hardware would, or `sim` and `agent --sim`
answer another question than the live federator.

- A member reports an Ascend static vNPU template as a partition pool `<chip>-vNPU-<template>`
  (`Ascend310P3-vNPU-2c`, backends/kube/vnpu.py) whose resource is the template's (`huawei.com/Ascend310P-2c`, cut
  from its chip's `huawei.com/Ascend310P`) and whose family is its chip's. A fleet pool of that name was looked up
  as a model, which the catalog does not list, and got its vendor's first resource (`huawei.com/Ascend910`): a job
  asking `huawei.com/Ascend310P: 250m`, as users.md documents, never fitted it (outside QA, planners P14). Here the
  name is read as the kube backend makes it, its chip found in the catalog; a vNPU of a chip the catalog does not
  know is refused, as a member leaves it out.
- A model the catalog does not know is most often a typo (`NVIDIA-H100-80GB-HBM4`): its memory is unknown, so no
  `minMemoryMiB` ask fits it, and a job naming the real model never selects it; the planner read "this capacity is
  useless" (P5). It is not refused, since a fleet may rightly hold a model no catalog lists (the Alibaba fleet's
  undisclosed `GPU-series-1`), but said once per model with the nearest names the catalog has and how to declare it
  (`unknown_models`). Partition pools (a name with MIG or vNPU in it) are named after a product label the catalog
  does not list and are left out of that check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from federator.catalog import Catalog, ModelEntry, catalog
from federator.catalog.model_names import nearest_models
from federator.model import MILLI
from federator.model.sharing import SHARING_MIG, names_partition

if TYPE_CHECKING:  # fleet.py checks its groups with this module
    from federator.backends.sim.fleet import ClusterSpec, NodeSpec

_VNPU = re.compile(r"^(?P<chip>.+?)-vNPU-(?P<template>(?P<cores>\d+)c(?:\.[0-9a-z]+)*)$", re.IGNORECASE)
LISTED = 3  # nearest catalog names a warning offers


def vnpu_parts(model: str) -> tuple[str, str, int] | None:
    """(chip, template, AI cores) of a vNPU pool's model (`Ascend310P3-vNPU-2c.1cpu` -> Ascend310P3, 2c.1cpu, 2),
    or None when the name is not one."""
    m = _VNPU.match(model)
    return (m.group("chip"), m.group("template"), int(m.group("cores"))) if m else None


def vnpu_problem(model: str, vendor: str, sharing: str, unit_milli: int,
                 cat: Catalog | None = None) -> tuple[str, str] | None:
    """(the node group's field, what is wrong with it) for a group naming a vNPU pool a member could not report, or
    None (nothing is, or it names no vNPU): its chip must be a catalog model with a resource, the pool a partition
    pool (sharing MIG), and each partition worth what a member reports (backends/kube/vnpu.py, Template.unit_milli:
    the template's AI cores of the chip's `aiCores`), else sim's capacity would not be the live one."""
    parts = vnpu_parts(model)
    if parts is None:
        return None
    cat = cat or catalog()
    chip_name, _template, cores = parts
    chip = cat.find_model(chip_name, vendor or None)
    if chip is None or not chip.resource_name:
        chips = sorted(m.name for m in cat.models(vendor or "huawei") if m.ai_cores)
        return "model", (f"{model} names a vNPU of chip {chip_name}, which the accelerator catalog does not know "
                         f"(chips with AI cores: {', '.join(chips) or 'none'}); a member leaves such vNPUs out. Add "
                         "the chip with --accelerator-catalog (its aiCores), or name a known chip")
    worth = max(1, cores * MILLI // chip.ai_cores) if 0 < cores <= chip.ai_cores else 0
    said = f"{worth}" if worth else "its share of the chip"
    of_chip = f"{cores} of {chip.name}'s {chip.ai_cores or 'unknown'} AI cores"
    if sharing != SHARING_MIG:
        return "sharing", (f"{model} is a vNPU pool, which a member reports as hardware partitions: give it "
                           f"sharing: MIG and unitMilli: {said} ({of_chip})")
    if worth and unit_milli != worth:
        return "unitMilli", (f"a member reports {model} at {worth} ({of_chip}), got {unit_milli}; the chip's AI "
                             "cores are the catalog's aiCores (--accelerator-catalog corrects them)")
    return None


def pool_kind(model: str, vendor: str = "", cat: Catalog | None = None) -> ModelEntry:
    """Vendor, memory, resource name and family of a simulated pool of `model` (`vendor` as the fleet says it, ""
    for the catalog's): the catalog's description (`Catalog.describe_model`), but for a vNPU pool its chip's vendor
    and family and the template's resource, as backends/kube/vnpu.py reports them; memory only where the template
    names it (`5c.1cpu.16g`)."""
    cat = cat or catalog()
    parts = vnpu_parts(model)
    chip = cat.find_model(parts[0], vendor or None) if parts else None
    if parts is None or chip is None or not chip.resource_name:
        return cat.describe_model(model, vendor)
    memory = re.search(r"\.(\d+)g(?:\.|$)", parts[1], re.IGNORECASE)
    return ModelEntry(model, chip.vendor, int(memory.group(1)) * 1024 if memory else 0,
                      f"{chip.resource_name}-{parts[1]}", chip.family)


def unknown_models(clusters: Iterable[ClusterSpec], cat: Catalog | None = None) -> list[str]:
    """One warning per accelerator model of `clusters` the catalog does not know (not a model, family or word of
    one; partition pools aside), naming where the fleet first says it, the value, how many nodes have it and the
    nearest catalog names: what `sim` and `agent --sim` print before they run (P5)."""
    cat = cat or catalog()
    first: dict[tuple[str, str], NodeSpec] = {}
    nodes: dict[tuple[str, str], int] = {}
    for c in clusters:
        for n in c.nodes:
            if not n.accelerator_model:
                continue
            key = (n.accelerator_model, n.vendor)
            first.setdefault(key, n)
            nodes[key] = nodes.get(key, 0) + 1
    out = []
    for (model, vendor), n in first.items():
        if names_partition(model) or cat.selects(model, vendor):
            continue
        close = nearest_models(model, cat, vendor=vendor, n=LISTED)
        hint = f"did you mean {' or '.join(close)}?" if close else "no catalog name is close"
        where = n.origin or f"node {n.name}"
        count = nodes[(model, vendor)]
        nodes_text = f"{count} node{'s' if count != 1 else ''}"
        memory = f"memoryMiB gives the memory of its {nodes_text}" if n.accelerator_memory_mib else \
            f"its memory is unknown, so no minMemoryMiB ask fits its {nodes_text}"
        out.append(f"{where}: {model!r} is not a model the accelerator catalog knows ({hint}): {memory}; if "
                   "it is real, declare it with --accelerator-catalog")
    return out


__all__ = ["pool_kind", "unknown_models", "vnpu_parts", "vnpu_problem"]
