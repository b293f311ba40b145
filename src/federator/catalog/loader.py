"""Parse and check a catalog file, reporting each problem with its line.

The YAML is composed into nodes (not loaded into plain values) so every
problem can say where it is: `catalog.yaml:14: vendors.huawei.models[2].memoryMiB:
must be a positive integer, got 'lots'`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as _field

import yaml

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,62})$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# An extended resource name: a DNS prefix, a slash and a name (Kubernetes' rule, shortened).
_RESOURCE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")  # a Kubernetes label value
_LABEL = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
VENDOR_KEYS = ("resources", "productLabel", "memoryLabel", "memoryUnit", "modelPrefix", "defaultModel", "sharing",
               "dra", "models")
MODEL_KEYS = ("name", "memoryMiB", "resource", "family", "aiCores", "labelValues", "perNode")
MAX_PER_NODE = 1024  # more devices than one node holds: a typo
MAX_AI_CORES = 4096  # more AI cores than any chip has: a typo (or memory in MiB) rather than a chip
DRA_KEYS = ("driver", "deviceClass", "productAttribute", "memoryCapacity", "typeAttribute", "deviceType")
# A DRA driver name is a DNS subdomain (gpu.nvidia.com); an attribute or capacity name a C identifier,
# optionally qualified by a domain (gpu.nvidia.com/productName).
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_ATTRIBUTE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z_][A-Za-z0-9_]{0,63}$")


class CatalogError(ValueError):
    """A catalog file that cannot be used; one line per problem, each with file and line."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Claims:
    """What the catalog a file is merged over already gives each vendor: its device plugins' resource names and
    its DRA drivers (name -> vendor). A resource name or a driver belongs to exactly one vendor: given to two,
    the agent would count the same devices once per vendor, and a job of one vendor would run on the other's
    (outside QA, vendors V4). A file's `resources` for a known vendor are added to its own, which stay
    claimed by it; a known vendor may leave `resources` out."""

    resources: Mapping[str, str] = _field(default_factory=dict)
    drivers: Mapping[str, str] = _field(default_factory=dict)

    def vendor_resources(self, vendor: str) -> list[str]:
        return [r for r, v in self.resources.items() if v == vendor]


def parse_catalog(text: str, *, source: str = "catalog", claims: Claims | None = None) -> list[dict[str, object]]:
    """Vendor dicts (`name`, `resources`, ..., `models`) of a checked catalog text; with `claims`, as a file
    merged over the catalog that holds them (a known vendor may leave `resources` out, and no resource name or
    DRA driver may be another vendor's)."""
    problems: list[str] = []
    claims = claims or Claims()
    known = set(claims.resources.values())

    def bad(node: yaml.Node | None, where: str, problem: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        problems.append(f"{source}{line}: {where}: {problem}")

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CatalogError([f"{source}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from exc
    vendors_node = _get(root, "vendors") if isinstance(root, yaml.MappingNode) else None
    if not isinstance(vendors_node, yaml.MappingNode):
        bad(vendors_node or root, "vendors", "must be a mapping of vendor name to {resources, models, ...}")
        raise CatalogError(problems)
    for key, _ in (root.value if isinstance(root, yaml.MappingNode) else []):
        if key.value != "vendors":
            bad(key, key.value, "is not a known field (known: vendors)")
    out: list[dict[str, object]] = []
    for key_node, body in vendors_node.value:
        name = key_node.value
        where = f"vendors.{name}"
        if not _NAME.match(str(name)):
            bad(key_node, where, "a vendor name is lower-case letters, digits and '-' (e.g. huawei)")
        if not isinstance(body, yaml.MappingNode):
            bad(body, where, "must be a mapping {resources, productLabel, memoryLabel, models, ...}")
            continue
        vendor: dict[str, object] = {"name": name}
        for k, v in body.value:
            field = f"{where}.{k.value}"
            if k.value not in VENDOR_KEYS:
                bad(k, field, f"is not a known field (known: {', '.join(VENDOR_KEYS)})")
            elif k.value == "resources":
                items = _strings(v)
                if items is None or not items:
                    bad(v, field, "must be a non-empty list of extended resource names, e.g. [amd.com/gpu]")
                else:
                    for i, (n, s) in enumerate(items):
                        if not _RESOURCE.match(s):
                            bad(n, f"{field}[{i}]", f"{s!r} is not a resource name such as huawei.com/Ascend910")
                    vendor["resources"] = [s for _, s in items]
                    vendor["_resource_nodes"] = [n for n, _ in items]
            elif k.value in ("productLabel", "memoryLabel"):
                # One label key, or a list tried in order (the first present names the product): Huawei's
                # MindCluster writes the chip name under a new and a deprecated key, and nodes may carry either.
                labels = [(v, str(v.value))] if isinstance(v, yaml.ScalarNode) else _strings(v)
                if not labels or not all(_LABEL.match(s) for _, s in labels):
                    bad(v, field, "must be a node label key such as nvidia.com/gpu.product, or a list of them")
                else:
                    vendor[k.value] = [s for _, s in labels]
            elif k.value == "defaultModel":
                if not isinstance(v, yaml.ScalarNode) or not _MODEL.match(str(v.value).replace("{resource}", "R")):
                    bad(v, field, "must be a model name, or {resource} (the resource name's last part)")
                else:
                    vendor[k.value] = str(v.value)
            elif k.value == "dra":
                vendor["dra"] = _dra(v, field, bad)
            elif k.value == "memoryUnit":
                if not isinstance(v, yaml.ScalarNode) or v.value not in ("Mi", "Gi"):
                    bad(v, field, "must be Mi or Gi (the unit of a bare number in the memory label)")
                else:
                    vendor[k.value] = v.value
            elif k.value == "modelPrefix":
                if not isinstance(v, yaml.ScalarNode) or not _MODEL.match(str(v.value)):
                    bad(v, field, "must be a short name such as Ascend")
                else:
                    vendor[k.value] = v.value
            elif k.value == "sharing":
                if not isinstance(v, yaml.MappingNode) or not all(
                        isinstance(a, yaml.ScalarNode) and isinstance(b, yaml.ScalarNode) for a, b in v.value):
                    bad(v, field, "must map names to resource or label names")
                else:
                    vendor["sharing"] = {a.value: b.value for a, b in v.value}
            elif k.value == "models":
                vendor["models"] = _models(v, field, bad)
        if "resources" not in vendor and name not in known:
            if not any(k.value == "resources" for k, _ in body.value):
                bad(
                    body, f"{where}.resources", "is required (the extended resource names its device plugin advertises)"
                )
        else:
            res: list[str] = [*claims.vendor_resources(name), *vendor.get("resources", [])]  # type: ignore[misc]
            for m in vendor.get("models", []):  # type: ignore[attr-defined]
                if m.get("resource") and m["resource"] not in res:
                    bad(m["_node"], f"{where}.models.{m['name']}.resource",
                        f"{m['resource']!r} is not one of the vendor's resources ({', '.join(res)})")  # type: ignore[arg-type]
        out.append(vendor)
    _check_owners(out, claims, bad)
    names = [m["name"].lower() for v in out for m in v.get("models", [])]  # type: ignore[attr-defined]
    for v in out:
        for m in v.get("models", []):  # type: ignore[attr-defined]
            if names.count(m["name"].lower()) > 1:
                bad(m["_node"], f"vendors.{v['name']}.models", f"model {m['name']!r} is listed more than once")
                names = [n for n in names if n != m["name"].lower()]
    if problems:
        raise CatalogError(problems)
    for v in out:
        v.pop("_resource_nodes", None)
        for m in [*v.get("models", []), *v.get("dra", [])]:  # type: ignore[misc]
            m.pop("_node", None)
    return out


def _check_owners(vendors: list[dict[str, object]], claims: Claims, bad: object) -> None:
    """Each resource name and DRA driver of the file belongs to one vendor, counting those of the catalog it is
    merged over (`Claims`): a vendor's own are listed once, another vendor's never."""
    report = bad  # a callable (node, where, problem)
    owners = dict(claims.resources)
    drivers = dict(claims.drivers)
    for v in vendors:
        name = str(v["name"])
        nodes: list[yaml.Node] = v.get("_resource_nodes", [])  # type: ignore[assignment]
        names: list[str] = v.get("resources", [])  # type: ignore[assignment]
        for i, (node, res) in enumerate(zip(nodes, names, strict=True)):
            owner = owners.setdefault(res, name)
            if owner != name:
                report(node, f"vendors.{name}.resources[{i}]",  # type: ignore[operator]
                       f"{res!r} is {owner}'s resource: a resource name belongs to one vendor's device plugin (given "
                       f"to two, the agent counts the same devices once for each); name {name}'s own resource")
        dra: list[dict[str, object]] = v.get("dra", [])  # type: ignore[assignment]
        for i, d in enumerate(dra):
            owner = drivers.setdefault(str(d["driver"]), name)
            if owner != name:
                report(d.get("_node"), f"vendors.{name}.dra[{i}].driver",  # type: ignore[operator]
                       f"{d['driver']!r} is {owner}'s DRA driver: a driver belongs to one vendor (given to two, the "
                       f"agent counts the same devices once for each); name {name}'s own driver")


def _int(node: yaml.Node) -> int | None:
    """The integer a YAML scalar is (24, 0x18, 2_4 as YAML reads them), or None for anything else (24.0, "24")."""
    if not isinstance(node, yaml.ScalarNode) or not node.tag.endswith(":int"):
        return None
    try:
        return int(yaml.constructor.SafeConstructor().construct_yaml_int(node))
    except ValueError:
        return None


def _bounded(node: yaml.Node, where: str, field: str, most: int, what: str, bad: object) -> int | None:
    """The integer 1..`most` a model's count field holds (`aiCores`, `perNode`), or None with the problem
    reported: one check and one wording for every bounded count, so a new one cannot drift from the rest."""
    value = _int(node)
    if value is not None and 0 < value <= most:
        return value
    got = repr(node.value) if isinstance(node, yaml.ScalarNode) else \
        f"a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}"
    bad(node, f"{where}.{field}", f"must be a positive integer, {what}, at most {most}; got {got}")  # type: ignore[operator]
    return None


def _get(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next((v for k, v in node.value if k.value == key), None)


def _strings(node: yaml.Node) -> list[tuple[yaml.Node, str]] | None:
    if not isinstance(node, yaml.SequenceNode) or not all(isinstance(n, yaml.ScalarNode) for n in node.value):
        return None
    return [(n, str(n.value)) for n in node.value]


def _mappings(node: yaml.Node, field: str, shape: str, bad: object) -> list[tuple[str, yaml.MappingNode]]:
    """The items of a list of mappings, each with its path (`field[i]`); a node that is not a list, or an
    item that is not a mapping, is reported as `shape` expects."""
    report = bad  # a callable (node, where, problem)
    if not isinstance(node, yaml.SequenceNode):
        report(node, field, f"must be a list of {shape}")  # type: ignore[operator]
        return []
    out = []
    for i, item in enumerate(node.value):
        if isinstance(item, yaml.MappingNode):
            out.append((f"{field}[{i}]", item))
        else:
            report(item, f"{field}[{i}]", f"must be a mapping {shape}")  # type: ignore[operator]
    return out


def _dra(node: yaml.Node, field: str, bad: object) -> list[dict[str, object]]:
    """DRA drivers of a vendor: [{driver, deviceClass, productAttribute, memoryCapacity, typeAttribute, deviceType}]."""
    report = bad  # a callable (node, where, problem)
    out: list[dict[str, object]] = []
    for where, d in _mappings(node, field, "{driver, deviceClass, productAttribute, memoryCapacity, ...}", bad):
        entry: dict[str, object] = {"_node": d}
        for k, v in d.value:
            if k.value not in DRA_KEYS:
                report(k, f"{where}.{k.value}", f"is not a known field (known: {', '.join(DRA_KEYS)})")  # type: ignore[operator]
                continue
            value = str(v.value) if isinstance(v, yaml.ScalarNode) and v.value is not None else None
            if k.value in ("driver", "deviceClass"):
                ok = value is not None and bool(_DNS.match(value))
                want = "a DNS name such as gpu.nvidia.com"
            elif k.value == "deviceType":
                ok, want = value is not None and len(value) <= 64, "a short string such as gpu (\"\" = every device)"
            else:
                ok = value is not None and (value == "" and k.value == "typeAttribute" or bool(_ATTRIBUTE.match(value)))
                want = "an attribute or capacity name such as productName"
            if not ok:
                report(v, f"{where}.{k.value}", f"must be {want}")  # type: ignore[operator]
            else:
                entry[k.value] = value or ""
        if "driver" not in entry:
            if not any(k.value == "driver" for k, _ in d.value):
                report(d, f"{where}.driver", "is required (the driver name its ResourceSlices carry)")  # type: ignore[operator]
            continue
        out.append(entry)
    return out


def _models(node: yaml.Node, field: str, bad: object) -> list[dict[str, object]]:
    report = bad  # a callable (node, where, problem)
    out: list[dict[str, object]] = []
    for where, m in _mappings(node, field, "{name, memoryMiB, resource, family, aiCores}", bad):
        entry: dict[str, object] = {"_node": m}
        for k, v in m.value:
            if k.value not in MODEL_KEYS:
                report(k, f"{where}.{k.value}", f"is not a known field (known: {', '.join(MODEL_KEYS)})")  # type: ignore[operator]
            elif k.value == "name":
                if not isinstance(v, yaml.ScalarNode) or not _MODEL.match(str(v.value)):
                    report(v, f"{where}.name", "must be a model name such as NVIDIA-H100-80GB-HBM3")  # type: ignore[operator]
                else:
                    entry["name"] = str(v.value)
            elif k.value == "memoryMiB":
                ok = isinstance(v, yaml.ScalarNode) and v.tag.endswith(":int") and int(v.value) > 0
                if not ok:
                    report(
                        v,
                        f"{where}.memoryMiB",
                        f"must be a positive integer (MiB per device), got {getattr(v, 'value', v)!r}",
                    )  # type: ignore[operator]
                else:
                    entry["memoryMiB"] = int(v.value)
            elif k.value == "aiCores":
                cores = _bounded(v, where, "aiCores", MAX_AI_CORES, "the AI cores of one chip (such as 24 for "
                                 "Ascend910B2)", bad)
                if cores is not None:
                    entry["aiCores"] = cores
            elif k.value == "perNode":
                per = _bounded(v, where, "perNode", MAX_PER_NODE, "the most devices of this model one node holds "
                               "(8 for an MI300X OAM platform)", bad)
                if per is not None:
                    entry["perNode"] = per
            elif k.value == "labelValues":
                values = _strings(v)
                if not values or not all(_LABEL_VALUE.match(s) for _, s in values):
                    report(v, f"{where}.labelValues", "must be a list of product label values naming this model, "
                           "such as [AMD_Instinct_MI300X_OAM]")  # type: ignore[operator]
                else:
                    entry["labelValues"] = [s for _, s in values]
            elif k.value == "family":
                if not isinstance(v, yaml.ScalarNode) or not _MODEL.match(str(v.value)):
                    report(v, f"{where}.family", "must be a model name such as Ascend910B")  # type: ignore[operator]
                else:
                    entry["family"] = str(v.value)
            elif k.value == "resource":
                if not isinstance(v, yaml.ScalarNode) or not _RESOURCE.match(str(v.value)):
                    report(v, f"{where}.resource", "must be a resource name such as huawei.com/Ascend910")  # type: ignore[operator]
                else:
                    entry["resource"] = str(v.value)
        if "name" not in entry:
            if not any(k.value == "name" for k, _ in m.value):
                report(m, f"{where}.name", "is required")  # type: ignore[operator]
            continue
        out.append(entry)
    return out
