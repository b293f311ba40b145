"""Fleet files: which simulated clusters exist, in which regions, with which nodes.

The project's YAML shape::

    clusters:
      - name: east-1
        region: east
        labels: {federator.io/price-per-accelerator-hour: "4.10"}
        nodes:
          - {count: 6, model: NVIDIA-H100-80GB-HBM3, accelerators: 8, cpu: 96, memory: 1Ti, busy: 6}
          - {count: 4, vendor: huawei, model: Ascend910B, accelerators: 16, cpu: 192, memory: 1Ti}

`vendor` is a name of the accelerator catalog (nvidia, amd, huawei, cambricon,
hygon, intel, ...); without one, the catalog's vendor of the model, else nvidia.
`busy` marks accelerators already taken by work the federator does not manage
(a busy region). The names from before vendors (`gpuModel`, `gpus`, `busyGpus`)
keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federator.catalog import catalog
from federator.model import QuantityError, to_bytes, to_milli
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
        name, region = c.get("name"), c.get("region")
        if not isinstance(name, str) or not name:
            raise FleetError(f"{where}.name: must be a non-empty string")
        if not isinstance(region, str) or not region:
            raise FleetError(f"{where}.region: must be a non-empty string")
        if name in out:
            raise FleetError(f"{where}.name: duplicate cluster {name!r}")
        labels = c.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise FleetError(f"{where}.labels: must be a mapping")
        nodes: list[NodeSpec] = []
        for j, group in enumerate(c.get("nodes") or []):
            nodes.extend(_node_group(group, f"{where}.nodes[{j}]", name, len(nodes)))
        out[name] = ClusterSpec(name, region, tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                                tuple(nodes))
    return out


_GROUP_KEYS = ("count", "vendor", "model", "accelerators", "busy", "cpu", "memory", "gpuModel", "gpus", "busyGpus")


def _node_group(group: Any, where: str, cluster: str, offset: int) -> list[NodeSpec]:
    if not isinstance(group, Mapping):
        raise FleetError(f"{where}: must be a mapping")
    for key in group:
        if key not in _GROUP_KEYS:
            raise FleetError(f"{where}.{key}: is not a known field (known: {', '.join(_GROUP_KEYS[:7])})")
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
    if devices < 0 or not 0 <= busy <= devices:
        raise FleetError(f"{where}.{busy_key}: must be between 0 and {count_key} ({devices})")
    if devices and not model:
        raise FleetError(f"{where}.{model_key}: required when {count_key} > 0")
    known = catalog()
    if vendor and known.vendor(vendor) is None:
        raise FleetError(f"{where}.vendor: unknown vendor {vendor!r} (the catalog has: "
                         f"{', '.join(known.vendor_names)}; add one with --accelerator-catalog)")
    busy_cpu = cpu * busy // devices if devices else 0
    busy_mem = memory * busy // devices if devices else 0
    return [
        NodeSpec(f"{cluster}-n{offset + k}", model, devices, cpu, memory, busy, busy_cpu, busy_mem, vendor)
        for k in range(count)
    ]
