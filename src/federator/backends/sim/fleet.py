"""Fleet files: which simulated clusters exist, in which regions, with which nodes.

The project's YAML shape::

    clusters:
      - name: east-1
        region: east
        labels: {federator.io/price-per-accelerator-hour: "4.10"}
        nodes:
          - {count: 6, model: NVIDIA-H100-80GB-HBM3, accelerators: 8, cpu: 96, memory: 1Ti, busy: 6}
          - {count: 4, vendor: huawei, model: Ascend910B, accelerators: 16, cpu: 192, memory: 1Ti}
          - {count: 2, model: A100, accelerators: 8, cpu: 64, memory: 512Gi, memoryMiB: 81920}

`vendor` is a name of the accelerator catalog (nvidia, amd, huawei, cambricon,
hygon, intel, ...); without one, the catalog's vendor of the model, else nvidia. A model the
catalog does not know is taken, and `sim` / `agent --sim` warn of it (pool_names.unknown_models).
`busy` marks accelerators already taken by work the federator does not manage
(a busy region). The names from before vendors (`gpuModel`, `gpus`, `busyGpus`)
keep working.

`memoryMiB` is the memory of one accelerator of the group, in MiB, as a real member's memory label says it
(agent.proto, AcceleratorPool.memory_mib). Without it the pool has the catalog's memory for its model only where
the name leaves no doubt (`NVIDIA-A100-SXM4-80GB`, `H100`), else unknown: a short name such as `A100` (40 or
80 GB) or `DCU` matches no `minMemoryMiB` ask, as on a real member, so give the memory for such a group.
The groups of one model in a cluster give one memory (a pool is one model).

`sharing` says how the nodes share their accelerators, as a real agent's pool says it
(agent.proto, AcceleratorPool.sharing; the federator sends a pool only what it serves,
and the simulated member binds the same way):

- not set: whole accelerators and fractions both (the simulated default);
- `None`: whole accelerators only;
- `TimeSlicing` or `MPS`: fractions only (500m), never a whole accelerator;
- `HAMi`: both;
- `MIG`: each of `accelerators` is a hardware partition worth `unitMilli` of a whole
  device (1..1000: 125 for a 1g.10gb of an 80 GB GPU; required with MIG, refused
  without); a replica of at most `unitMilli` takes one partition, a whole ask one
  partition per accelerator asked. Name the pool as a member does, after its profile
  (`NVIDIA-A100-80GB-MIG-1g.10gb`), or an Ascend vNPU pool `<chip>-vNPU-<template>`
  (`Ascend310P3-vNPU-2c`, unitMilli 250: the template's resource, huawei.com/Ascend310P-2c, is
  reported; pool_names.py). A partition counts its `unitMilli` of a device in every total, as live.

Every node group of one model in a cluster shares the same way (a pool is one model).
Spelling is forgiving (`time-slicing` reads as TimeSlicing); the pool says the name above.

    clusters:
      - name: shared-1
        region: east
        nodes:
          - {count: 2, model: NVIDIA-L40S, accelerators: 4, cpu: 32, memory: 256Gi, sharing: TimeSlicing}
          - {count: 1, model: NVIDIA-A100-80GB-MIG-1g.10gb, accelerators: 56, cpu: 64, memory: 512Gi,
             sharing: MIG, unitMilli: 125}
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federator.backends.sim.pool_names import vnpu_problem
from federator.catalog import catalog
from federator.model import MILLI, QuantityError, to_bytes, to_milli
from federator.model.cluster import SHARING_MIG
from federator.yamltext import YamlFileError, load_yaml_file


class FleetError(ValueError):
    """A fleet file that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    accelerator_model: str  # "" for a CPU-only node
    accelerators: int
    cpu_milli: int
    memory_bytes: int
    busy_accelerators: int = 0
    busy_cpu_milli: int = 0
    busy_memory_bytes: int = 0
    vendor: str = ""  # "" = the catalog's vendor of the model
    sharing: str = ""  # AcceleratorPool.sharing ("" = not said: whole devices and fractions both)
    unit_milli: int = 0  # MIG: what one partition is worth of a whole device; 0 otherwise
    accelerator_memory_mib: int = 0  # memory of one accelerator (memoryMiB); 0 = the catalog's, where sure
    # Where the fleet file names the model ("fleet.yaml: clusters[0].nodes[1].gpuModel"), for a warning; "" unknown
    origin: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    name: str
    region: str
    labels: tuple[tuple[str, str], ...]
    nodes: tuple[NodeSpec, ...]


def load_fleet(path: Path) -> dict[str, ClusterSpec]:
    try:
        doc = load_yaml_file(path)
    except YamlFileError as exc:
        raise FleetError(f"{path}: {exc}") from exc
    return parse_fleet(doc, source=str(path))


def parse_fleet(doc: Any, *, source: str = "fleet") -> dict[str, ClusterSpec]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("clusters"), list):
        raise FleetError(f"{source}: clusters: must be a list of clusters")
    out: dict[str, ClusterSpec] = {}
    for i, c in enumerate(doc["clusters"]):
        where = f"{source}: clusters[{i}]"
        if not isinstance(c, Mapping):
            raise FleetError(f"{where}: must be a mapping")
        for key in c:
            if key not in _CLUSTER_KEYS:
                raise FleetError(f"{where}.{key}: is not a known field{_did_you_mean(key, _CLUSTER_KEYS)} "
                                 f"(known: {', '.join(_CLUSTER_KEYS)})")
        name, region, labels = cluster_identity(c, where, taken=out, error=FleetError)
        nodes: list[NodeSpec] = []
        shares: dict[str, tuple[str, int, int]] = {}  # model -> (sharing, unit milli, the first group saying it)
        memories: dict[str, tuple[int, int]] = {}  # model -> (memoryMiB, the first group saying it)
        for j, group in enumerate(c.get("nodes") or []):
            made = _node_group(group, f"{where}.nodes[{j}]", name, len(nodes))
            if made and made[0].accelerator_model:
                first = made[0]
                said = shares.setdefault(first.accelerator_model, (first.sharing, first.unit_milli, j))
                if said[:2] != (first.sharing, first.unit_milli):
                    these = _shared(first.sharing, first.unit_milli)
                    raise FleetError(
                        f"{where}.nodes[{j}].sharing: the nodes of {first.accelerator_model} in this cluster share "
                        f"as {_shared(*said[:2])} in nodes[{said[2]}], these as {these}: a pool (one model) shares "
                        "one way; give one of them another model name")
                mem = memories.setdefault(first.accelerator_model, (first.accelerator_memory_mib, j))
                if mem[0] != first.accelerator_memory_mib:
                    raise FleetError(
                        f"{where}.nodes[{j}].memoryMiB: the nodes of {first.accelerator_model} in this cluster have "
                        f"{mem[0] or 'no memoryMiB'} in nodes[{mem[1]}], these "
                        f"{first.accelerator_memory_mib or 'none'}: a pool (one model) has one memory; give one of "
                        "them another model name")
            nodes.extend(made)
        out[name] = ClusterSpec(name, region, labels, tuple(nodes))
    return out


def cluster_identity(c: Mapping[str, Any], where: str, *, taken: Mapping[str, object],
                     error: type[ValueError]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """A fleet entry's name, region and labels (sorted pairs, as ClusterSpec keeps them), checked by one rule
    whether a fleet file or the live view (`get clusters -o yaml`, simulate/live_fleet.py) said them: `error`
    (the reader's own) names the field when one is missing, not a string, or a name already `taken`."""
    name, region = c.get("name"), c.get("region")
    if not isinstance(name, str) or not name:
        raise error(f"{where}.name: must be a non-empty string")
    if not isinstance(region, str) or not region:
        raise error(f"{where}.region: must be a non-empty string")
    if name in taken:
        raise error(f"{where}.name: duplicate cluster {name!r}")
    labels = c.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise error(f"{where}.labels: must be a mapping")
    return name, region, tuple(sorted((str(k), str(v)) for k, v in labels.items()))


_CLUSTER_KEYS = ("name", "region", "labels", "nodes")
_KNOWN_KEYS = ("count", "vendor", "model", "accelerators", "busy", "cpu", "memory", "memoryMiB", "sharing",
               "unitMilli")
_OLD_NAMES = {"model": "gpuModel", "accelerators": "gpus", "busy": "busyGpus"}  # the names from before vendors
_GROUP_KEYS = (*_KNOWN_KEYS, *_OLD_NAMES.values())
_KNOWN_TEXT = ", ".join(f"{k} (or {_OLD_NAMES[k]})" if k in _OLD_NAMES else k for k in _KNOWN_KEYS)


def _did_you_mean(key: object, known: tuple[str, ...]) -> str:
    """' (did you mean region?)' for a key close to a known one (case aside), else ''."""
    close = difflib.get_close_matches(str(key).lower(), [k.lower() for k in known], n=1, cutoff=0.6)
    return f" (did you mean {next(k for k in known if k.lower() == close[0])}?)" if close else ""
SHARINGS = ("None", "TimeSlicing", "MPS", "HAMi", "MIG")
"""The values of a node group's `sharing`: AcceleratorPool.sharing's (agent.proto), but "" (not said)."""


def _shared(sharing: str, unit_milli: int) -> str:
    if not sharing:
        return "not said (whole and fractions)"
    return f"{sharing} ({unit_milli}m a partition)" if unit_milli else sharing


def _sharing(group: Mapping[str, Any], where: str, devices: int) -> tuple[str, int]:
    """A node group's (sharing, unit milli), checked: FleetError naming the field."""
    raw, unit = group.get("sharing"), group.get("unitMilli")
    sharing = ""
    if raw is not None:
        if not devices:
            raise FleetError(f"{where}.sharing: only for nodes with accelerators")
        wanted = str(raw).replace("-", "").replace("_", "").replace(" ", "").lower()
        sharing = next((s for s in SHARINGS if s.lower() == wanted), "")
        if not isinstance(raw, str) or not sharing:
            raise FleetError(f"{where}.sharing: must be one of {', '.join(SHARINGS)} (agent.proto, "
                             f"AcceleratorPool.sharing), got {raw!r}")
    if sharing != SHARING_MIG:
        if unit is not None:
            raise FleetError(f"{where}.unitMilli: only with sharing: MIG (what one partition is worth)")
        return sharing, 0
    if unit is None:
        raise FleetError(f"{where}.unitMilli: required with sharing: MIG: what one partition is worth of a whole "
                         f"accelerator, 1..{MILLI} (125 for a 1g.10gb of an 80 GB GPU)")
    if isinstance(unit, bool) or not isinstance(unit, int) or not 1 <= unit <= MILLI:
        raise FleetError(f"{where}.unitMilli: must be a whole number from 1 to {MILLI}, got {unit!r}")
    return sharing, unit


def _node_group(group: Any, where: str, cluster: str, offset: int) -> list[NodeSpec]:
    if not isinstance(group, Mapping):
        raise FleetError(f"{where}: must be a mapping")
    for key in group:
        if key not in _GROUP_KEYS:
            raise FleetError(f"{where}.{key}: is not a known field{_did_you_mean(key, _GROUP_KEYS)} "
                             f"(known: {_KNOWN_TEXT})")
    model_key = "gpuModel" if "gpuModel" in group or "gpus" in group else "model"
    count_key = "gpus" if "gpus" in group else "accelerators"
    busy_key = "busyGpus" if "busyGpus" in group else "busy"
    try:
        count = int(group.get("count", 1))
        devices = int(group.get(count_key, 0))
        busy = int(group.get(busy_key, 0))
        cpu = to_milli(group.get("cpu", 0))
        memory = to_bytes(group.get("memory", 0))
    except (TypeError, ValueError, QuantityError) as exc:
        raise FleetError(f"{where}: {exc}") from exc
    model = str(group.get(model_key, "")) if devices else ""
    vendor = str(group.get("vendor", "")) if devices else ""
    if count < 1:
        raise FleetError(f"{where}.count: must be at least 1")
    if devices < 0:
        raise FleetError(f"{where}.{count_key}: must be 0 or more (accelerators on each node), got {devices}")
    if not 0 <= busy <= devices:
        raise FleetError(f"{where}.{busy_key}: must be between 0 and {count_key} ({devices}), got {busy}")
    if devices and not model:
        raise FleetError(f"{where}.{model_key}: required when {count_key} > 0")
    sharing, unit_milli = _sharing(group, where, devices)
    memory_mib = group.get("memoryMiB", 0)
    if "memoryMiB" in group and not devices:
        raise FleetError(f"{where}.memoryMiB: only for nodes with accelerators (the memory of one)")
    if isinstance(memory_mib, bool) or not isinstance(memory_mib, int) or memory_mib < 0 or \
            ("memoryMiB" in group and memory_mib == 0):
        raise FleetError(f"{where}.memoryMiB: must be a whole number of MiB above 0 (one accelerator's memory, "
                         f"81920 for an 80 GB GPU), got {memory_mib!r}")
    known = catalog()
    if vendor and known.vendor(vendor) is None:
        raise FleetError(f"{where}.vendor: unknown vendor {vendor!r} (the catalog has: "
                         f"{', '.join(known.vendor_names)}; add one with --accelerator-catalog)")
    vnpu = vnpu_problem(model, vendor, sharing, unit_milli, known) if devices else None
    if vnpu:
        raise FleetError(f"{where}.{model_key if vnpu[0] == 'model' else vnpu[0]}: {vnpu[1]}")
    busy_cpu = cpu * busy // devices if devices else 0
    busy_mem = memory * busy // devices if devices else 0
    origin = f"{where}.{model_key}"
    return [
        NodeSpec(f"{cluster}-n{offset + k}", model, devices, cpu, memory, busy, busy_cpu, busy_mem, vendor,
                 sharing, unit_milli, memory_mib, origin)
        for k in range(count)
    ]
