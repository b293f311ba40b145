"""The accelerator catalog: vendors, their device plugins' resource names and labels, known models.

The catalog is data (`accelerators.yaml`, shipped in the package), so a new
vendor or model is a file change, not a code change. Operators extend it with
a file of the same format (`--accelerator-catalog FILE`): its vendors are
merged over the built-in ones, model by model. A file with errors is refused
with the line of each problem, since it is hand-written YAML.

Who reads it: the job-file parser (which resource names a job may ask for, and
which vendor a model belongs to), the wire edge (the vendor of a pool an older
agent reported without one), the simulated backend (vendor, memory and resource
of a fleet file's model) and the Kubernetes backend (which node resources and
labels carry devices). The scheduler never does: it sees vendors and models
already on the pools.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from federator.catalog.loader import CatalogError, parse_catalog
from federator.model.accelerator import DEFAULT_VENDOR, model_matches


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    vendor: str
    memory_mib: int = 0
    resource_name: str = ""  # the vendor's first resource unless the entry names one


@dataclass(frozen=True, slots=True)
class VendorEntry:
    name: str
    resources: tuple[str, ...]
    product_label: str = ""
    memory_label: str = ""
    memory_unit: str = "Mi"  # unit of a bare number in memory_label: Mi or Gi
    model_prefix: str = ""  # prepended to the product label's value to form the model name
    sharing: tuple[tuple[str, str], ...] = ()  # sharing resource/label names (MIG, time-slicing, HAMi)
    models: tuple[ModelEntry, ...] = ()

    @property
    def resource_name(self) -> str:
        return self.resources[0] if self.resources else ""

    def sharing_name(self, key: str) -> str:
        return dict(self.sharing).get(key, "")


@dataclass(frozen=True, slots=True)
class Catalog:
    vendors: tuple[VendorEntry, ...] = ()
    _by_resource: dict[str, VendorEntry] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for v in self.vendors:
            for r in v.resources:
                self._by_resource.setdefault(r, v)

    def vendor(self, name: str) -> VendorEntry | None:
        return next((v for v in self.vendors if v.name == name), None)

    @property
    def vendor_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.vendors)

    @property
    def resource_names(self) -> tuple[str, ...]:
        return tuple(self._by_resource)

    def vendor_of_resource(self, resource_name: str) -> VendorEntry | None:
        return self._by_resource.get(resource_name)

    def models(self, vendor: str | None = None) -> tuple[ModelEntry, ...]:
        return tuple(m for v in self.vendors if vendor in (None, v.name) for m in v.models)

    def find_model(self, name: str, vendor: str | None = None) -> ModelEntry | None:
        """The catalog entry a model name selects: exact (case-insensitive) first, then by tokens
        ("H100" selects NVIDIA-H100-80GB-HBM3); None when unknown or ambiguous across vendors."""
        candidates = self.models(vendor)
        exact = [m for m in candidates if m.name.lower() == name.lower()]
        if exact:
            return exact[0]
        matched = [m for m in candidates if model_matches(name, m.name)]
        if matched and len({m.vendor for m in matched}) == 1:
            return matched[0]
        return None

    def vendor_of_model(self, name: str) -> str:
        """The vendor of a model as the catalog knows it, else the default vendor (nvidia)."""
        entry = self.find_model(name)
        return entry.vendor if entry else DEFAULT_VENDOR

    def describe_model(self, name: str, vendor: str = "") -> ModelEntry:
        """Vendor, memory and resource name for a model, filling in what the catalog knows."""
        entry = self.find_model(name, vendor or None)
        vendor = vendor or (entry.vendor if entry else DEFAULT_VENDOR)
        ventry = self.vendor(vendor)
        resource = (entry.resource_name if entry else "") or (ventry.resource_name if ventry else "")
        return ModelEntry(name, vendor, entry.memory_mib if entry else 0, resource)

    def merged(self, other: Catalog) -> Catalog:
        """This catalog extended by `other`: new vendors added; for a vendor in both, other's
        resources, labels and models win where given and the rest is kept."""
        out = {v.name: v for v in self.vendors}
        for v in other.vendors:
            base = out.get(v.name)
            if base is None:
                out[v.name] = v
                continue
            models = {m.name: m for m in base.models}
            models.update({m.name: m for m in v.models})
            out[v.name] = VendorEntry(
                v.name, tuple(dict.fromkeys(v.resources + base.resources)),
                v.product_label or base.product_label, v.memory_label or base.memory_label,
                v.memory_unit if v.memory_label else base.memory_unit, v.model_prefix or base.model_prefix,
                tuple(sorted({**dict(base.sharing), **dict(v.sharing)}.items())), tuple(models.values()))
        return Catalog(tuple(out.values()))


def load_catalog_file(path: Path) -> Catalog:
    """A catalog file as written (not merged); CatalogError names the file and line of each problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    return _build(parse_catalog(text, source=str(path)))


def parse_catalog_text(text: str, source: str = "catalog") -> Catalog:
    return _build(parse_catalog(text, source=source))


def _build(raw: Iterable[dict[str, object]]) -> Catalog:
    vendors = []
    for v in raw:
        name = str(v["name"])
        res: tuple[str, ...] = tuple(v["resources"])  # type: ignore[arg-type]
        models = tuple(ModelEntry(str(m["name"]), name, int(m.get("memoryMiB", 0)),  # type: ignore[union-attr,call-overload]
                                  str(m.get("resource") or (res[0] if res else "")))  # type: ignore[union-attr]
                       for m in v.get("models", ()))  # type: ignore[attr-defined]
        vendors.append(VendorEntry(name, res, str(v.get("productLabel", "")), str(v.get("memoryLabel", "")),
                                   str(v.get("memoryUnit", "Mi")), str(v.get("modelPrefix", "")),
                                   tuple(sorted(dict(v.get("sharing", {})).items())),  # type: ignore[call-overload]
                                   models))
    return Catalog(tuple(vendors))


@cache
def builtin_catalog() -> Catalog:
    text = resources.files("federator.catalog").joinpath("accelerators.yaml").read_text()
    return parse_catalog_text(text, source="accelerators.yaml (built in)")


_active: list[Catalog] = []


def catalog() -> Catalog:
    """The process's catalog: the built-in one, extended by the operator's file if one was given."""
    return _active[-1] if _active else builtin_catalog()


def use_catalog_file(path: Path | None) -> Catalog:
    """Extend the built-in catalog with an operator's file for this process (serve, agent, sim)."""
    active = builtin_catalog() if path is None else builtin_catalog().merged(load_catalog_file(path))
    _active[:] = [active]
    return active


def memory_mib_of_label(value: str, unit: str = "Mi") -> int:
    """Device memory from a node label: '81559' (unit Mi), '192G' / '192Gi' (GiB), '64Gi'. 0 if unreadable."""
    v = value.strip()
    scale = {"Mi": 1, "M": 1, "Gi": 1024, "G": 1024}
    for suffix in ("Gi", "Mi", "G", "M"):
        if v.endswith(suffix):
            v, factor = v[: -len(suffix)], scale[suffix]
            break
    else:
        factor = scale.get(unit, 1)
    try:
        return int(float(v) * factor)
    except ValueError:
        return 0


__all__ = [
    "Catalog",
    "CatalogError",
    "ModelEntry",
    "VendorEntry",
    "builtin_catalog",
    "catalog",
    "load_catalog_file",
    "memory_mib_of_label",
    "parse_catalog_text",
    "use_catalog_file",
]
