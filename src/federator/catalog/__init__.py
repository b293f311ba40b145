"""The accelerator catalog: vendors, their device plugins' resource names and labels, known models.

The catalog is data (`accelerators.yaml`, shipped in the package), so a new
vendor or model is a file change, not a code change. Operators extend it with
a file of the same format (`--accelerator-catalog FILE`): its vendors are
merged over the built-in ones (a known vendor's resources, models and DRA
drivers are added to, the other fields the file gives replace the built-in ones;
a built-in model keeps the fields the file's entry of it leaves out). A file
with errors is refused with the line of each problem, since it is hand-written
YAML; so is one giving a resource name or DRA driver to a second vendor
(loader.Claims).

Who reads it: the job-file parser (which resource names a job may ask for, and
which vendor a model belongs to), the wire edge (a reported pool's vendor checked
against its resource name, or found from it: api/pool_vendor.py), the simulated backend (vendor, memory and resource
of a fleet file's model) and the Kubernetes backend (which node resources and
labels carry devices). The scheduler never does: it sees vendors and models
already on the pools.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path

from federator.catalog.loader import CatalogError, Claims, parse_catalog
from federator.model.accelerator import DEFAULT_VENDOR, accepts_model, model_matches, prefixed_model
from federator.model.cluster import DRA_SUFFIX
from federator.yamltext import read_text

MEMO_LIMIT = 10_000  # names a catalog remembers answers for before it forgets them all


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    vendor: str
    memory_mib: int = 0
    resource_name: str = ""  # the vendor's first resource unless the entry names one
    family: str = ""  # the name users write for this model and its siblings (Ascend910B for Ascend910B3)
    # AI cores of one chip (0 = unknown): what one of a static vNPU template's units is worth of the chip
    # (backends/kube/vnpu.py); data, so that an operator's file adds a chip the release does not know
    ai_cores: int = 0
    # The product label's values naming this model where the labeller spells it otherwise than the catalog (AMD's
    # node labeller writes AMD_Instinct_MI300X_OAM for AMD-Instinct-MI300X): the agent reports the catalog's name
    label_values: tuple[str, ...] = ()
    # The most devices of this model one node holds (0 = not said): a node whose resource counts more, in a way
    # the agent cannot tell (AMD compute partitions without their label), is left out rather than miscounted
    per_node: int = 0


@dataclass(frozen=True, slots=True)
class DraDriverEntry:
    """A DRA driver whose ResourceSlices carry this vendor's accelerators, and which attributes say what."""

    driver: str  # spec.driver of its ResourceSlices, e.g. gpu.nvidia.com
    device_class: str = ""  # the DeviceClass a claim names ("" = the driver's name)
    product_attribute: str = "productName"
    memory_capacity: str = "memory"
    type_attribute: str = "type"  # only devices whose type attribute is device_type count ("" = every device)
    device_type: str = "gpu"


@dataclass(frozen=True, slots=True)
class VendorEntry:
    name: str
    resources: tuple[str, ...]
    product_labels: tuple[str, ...] = ()  # node labels naming the product, the first present one wins
    memory_labels: tuple[str, ...] = ()  # node labels with the memory of one device, likewise
    memory_unit: str = "Mi"  # unit of a bare number in a memory label: Mi or Gi
    model_prefix: str = ""  # prepended to the product label's value to form the model name
    sharing: tuple[tuple[str, str], ...] = ()  # sharing resource/label names (MIG, time-slicing, HAMi)
    models: tuple[ModelEntry, ...] = ()
    default_model: str = ""  # the model of devices on a node with no product label; "{resource}" = its last part
    dra: tuple[DraDriverEntry, ...] = ()

    @property
    def resource_name(self) -> str:
        return self.resources[0] if self.resources else ""

    @property
    def product_label(self) -> str:
        return self.product_labels[0] if self.product_labels else ""

    def model_name(self, product: str) -> str:
        """The catalog's model name for a product label's value: the vendor's prefix applied unless
        the value already starts with it (MindCluster's 910B3 -> Ascend910B3)."""
        return prefixed_model(self.model_prefix, product)

    def unlabelled_model(self, resource: str) -> str:
        """The model of devices of `resource` on a node without a product label."""
        last = resource.rsplit("/", 1)[-1]
        return self.default_model.replace("{resource}", last) if self.default_model else "unknown"

    def sharing_name(self, key: str) -> str:
        return dict(self.sharing).get(key, "")


@dataclass(frozen=True, slots=True)
class Catalog:
    vendors: tuple[VendorEntry, ...] = ()
    _by_resource: dict[str, VendorEntry] = field(default_factory=dict, compare=False, repr=False)
    # Answers by model name: Submit asks them of every job, and the names come from users (so the memo is bounded).
    _found: dict[tuple[str, str | None], ModelEntry | None] = field(default_factory=dict, compare=False, repr=False)
    _selected: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False, repr=False)
    _placeholders: list[frozenset[str]] = field(default_factory=list, compare=False, repr=False)  # 0 or 1, once

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

    def vendor_of_pool_resource(self, name: str) -> str | None:
        """The vendor a pool's resource_name belongs to: an extended resource of a vendor's device plugin, or a
        vendor's DRA DeviceClass followed by " (DRA)"; None when the catalog gives it no vendor (MIG, HAMi and
        time-sliced names, a vendor the catalog lacks)."""
        if name.endswith(DRA_SUFFIX):
            device_class = name.removesuffix(DRA_SUFFIX)
            return next((v.name for v in self.vendors for d in v.dra if d.device_class == device_class), None)
        owner = self._by_resource.get(name)
        return owner.name if owner is not None else None

    def models(self, vendor: str | None = None) -> tuple[ModelEntry, ...]:
        return tuple(m for v in self.vendors if vendor in (None, v.name) for m in v.models)

    def find_model(self, name: str, vendor: str | None = None) -> ModelEntry | None:
        """The catalog entry a model name selects: exact (case-insensitive) first, then a model of that
        family, then by tokens ("H100" selects NVIDIA-H100-80GB-HBM3); None when unknown or ambiguous
        across vendors."""
        key = (name, vendor)
        if key in self._found:
            return self._found[key]
        if len(self._found) > MEMO_LIMIT:
            self._found.clear()
        found = self._found[key] = self._find_model(name, vendor)
        return found

    def selects(self, name: str, vendor: str = "") -> bool:
        """Whether a user's model name selects some model of the catalog (by its name or its family), of that
        vendor if given."""
        key = (name, vendor)
        got = self._selected.get(key)
        if got is None:
            if len(self._selected) > MEMO_LIMIT:
                self._selected.clear()
            generic = self.vendor_of_generic(name)
            got = self._selected[key] = bool(generic and vendor in ("", generic)) or \
                any(accepts_model(name, m.name, m.family) for m in self.models(vendor or None))
        return got

    def generic_model(self, vendor: str) -> str:
        """The name that stands for every model of `vendor` ("" if none): its `defaultModel` when that is one word for
        the whole vendor (Cambricon's MLU, Hygon's DCU, Intel's Gaudi, AMD's AMD-GPU), not one per resource
        (Huawei's "{resource}"). 0.10.0 named every unlabelled node of such a vendor so, and jobs asked for it by
        that name; 0.11.0 offers only labelled nodes (MLU370-X8), and a job naming `MLU` selects all of them: the
        wire edge and the simulated backend give every pool of the vendor this name as its family when the catalog
        gives it none (`describe_model`), so the scheduler's matcher (accepts_model) needs no catalog (outside QA,
        vendors2 R8: a job stored by 0.10.0 with `model: MLU` waited for ever beside free MLU370-X8s)."""
        v = self.vendor(vendor)
        return v.default_model if v is not None and v.default_model and "{" not in v.default_model else ""

    def vendor_of_generic(self, name: str) -> str:
        """The vendor whose `generic_model` `name` is (case-insensitive), "" if none."""
        return next((v.name for v in self.vendors if self.generic_model(v.name).lower() == name.lower()), "")

    def _find_model(self, name: str, vendor: str | None) -> ModelEntry | None:
        candidates = self.models(vendor)
        exact = [m for m in candidates if m.name.lower() == name.lower()]
        if exact:
            return exact[0]
        family = [m for m in candidates if m.family.lower() == name.lower()]
        if family and len({m.vendor for m in family}) == 1:
            return family[0]  # a family name (Acme-X) is its vendor's, though no entry carries it as a name
        matched = [m for m in candidates if model_matches(name, m.name)]
        if matched and len({m.vendor for m in matched}) == 1:
            return matched[0]
        return None

    def placeholder_models(self) -> frozenset[str]:
        """Lower-cased model names that name no product: what an agent once called devices on a node without their
        vendor's product label ("unknown", AMD's "AMD-GPU", Huawei's "Ascend910"). Such devices are no longer
        offered (backends/kube/devices.py), and a job naming one is refused: it asked for "whatever is
        unlabelled", which no pod can be pinned to (outside provider QA F3). A vendor's `generic_model` (MLU) is a
        real name, of every model of the vendor, and so is a name the catalog lists as a model or family."""
        if self._placeholders:  # the vendors never change: worked out once (asked of every job at Submit)
            return self._placeholders[0]
        names = {"unknown"}
        names.update(v.unlabelled_model(r).lower() for v in self.vendors if v.product_labels for r in v.resources)
        real = {n.lower() for m in self.models() for n in (m.name, m.family) if n}
        real.update(self.generic_model(v.name).lower() for v in self.vendors)
        self._placeholders.append(frozenset(names - real))
        return self._placeholders[0]

    def is_placeholder(self, name: str) -> bool:
        """Whether a user's model name is one of `placeholder_models` (case-insensitive)."""
        return name.lower() in self.placeholder_models()

    def vendor_of_model(self, name: str) -> str:
        """The vendor of a model as the catalog knows it, else the default vendor (nvidia)."""
        entry = self.find_model(name)
        return entry.vendor if entry else DEFAULT_VENDOR

    def describe_model(self, name: str, vendor: str = "") -> ModelEntry:
        """Vendor, memory, resource name and family for a model, filling in what the catalog knows.

        The family is taken only from an entry of exactly this name: a pool's family widens which
        names select it, so it must not come from a guess; without one, the vendor's `generic_model` (MLU370-X8's
        is MLU), known from the vendor and not from the name. The memory likewise is never a guess
        (model_memory): a capability ask (`minMemoryMiB`) matches a pool by it."""
        entry = self.find_model(name, vendor or None)
        vendor = vendor or (entry.vendor if entry else DEFAULT_VENDOR)
        ventry = self.vendor(vendor)
        resource = (entry.resource_name if entry else "") or (ventry.resource_name if ventry else "")
        family = (entry.family if entry and entry.name.lower() == name.lower() else "") or self.generic_model(vendor)
        return ModelEntry(name, vendor, self.model_memory(name, vendor), resource, family)

    def model_memory(self, name: str, vendor: str) -> int:
        """The memory of one device of a model name, in MiB, when the catalog's models of `vendor` it selects all
        have the same (one entry of that name, or every model its family or words select); else 0, unknown.

        A Hygon member's pool is "DCU" (the plugin labels no product), whose words select DCU-Z100 (32 GiB) and
        DCU-K100 (64 GiB): it was given the first one's memory, so a 64 GiB ask waited beside K100s, and with the
        lines of the catalog in the other order a 64 GiB job would have gone to Z100s (outside QA, vendors V7).
        Unknown memory matches no memory ask, and the pending reason says the memory is unknown."""
        models = self.models(vendor or None)
        exact = [m for m in models if m.name.lower() == name.lower()]
        selected = exact or [m for m in models if m.family.lower() == name.lower()] or \
            [m for m in models if model_matches(name, m.name)]
        memories = {m.memory_mib for m in selected}
        return memories.pop() if len(memories) == 1 else 0

    def claims(self) -> Claims:
        """Which vendor each resource name and DRA driver belongs to: what a file merged over this one is checked
        against (loader.Claims)."""
        return Claims({r: v.name for r, v in self._by_resource.items()},
                      {d.driver: v.name for v in self.vendors for d in v.dra})

    def merged(self, other: Catalog) -> Catalog:
        """This catalog extended by `other`: new vendors added; for a vendor in both, other's `resources` are
        added to this one's (after them, so the vendor's first resource stays its own), models and DRA drivers
        are merged by name (a model in both keeps the fields other's entry leaves out: `_model_over`), each
        other field other gives replaces this one's, and the rest is kept.

        `resources` add, as in 0.10.0, where that field was required: a file that named huawei.com/Ascend910 to
        add a model must not stop the agent reading the Ascend 310P nodes (outside QA re-test, vendors2 R1,
        after a day of replacing them). A built-in resource cannot be removed by a file."""
        out = {v.name: v for v in self.vendors}
        for v in other.vendors:
            base = out.get(v.name)
            if base is None:
                out[v.name] = v
                continue
            resources = tuple(dict.fromkeys(base.resources + v.resources))
            models = {m.name: m for m in base.models}
            for m in v.models:
                known = models.get(m.name)
                models[m.name] = _model_over(known, replace(m, resource_name=m.resource_name or (
                    known.resource_name if known is not None else resources[0])))
            dra = {d.driver: d for d in base.dra}
            dra.update({d.driver: d for d in v.dra})
            out[v.name] = VendorEntry(
                v.name, resources,
                v.product_labels or base.product_labels, v.memory_labels or base.memory_labels,
                v.memory_unit if v.memory_labels else base.memory_unit, v.model_prefix or base.model_prefix,
                tuple(sorted({**dict(base.sharing), **dict(v.sharing)}.items())), tuple(models.values()),
                v.default_model or base.default_model, tuple(dra.values()))
        return Catalog(tuple(out.values()))


def _model_over(base: ModelEntry | None, other: ModelEntry) -> ModelEntry:
    """A file's model entry over the built-in one of the same name: the fields the file gives (memoryMiB, family,
    aiCores; its resource is settled by the caller) replace the built-in ones, the rest are kept. A file that
    corrects one chip's AI cores (`{name: Ascend910B3, aiCores: 20}`) must not take away its family or memory,
    which would stop a job naming Ascend910B from selecting it."""
    if base is None:
        return other
    return replace(other, memory_mib=other.memory_mib or base.memory_mib, family=other.family or base.family,
                   ai_cores=other.ai_cores or base.ai_cores, label_values=other.label_values or base.label_values,
                   per_node=other.per_node or base.per_node)


def load_catalog_file(path: Path, *, base: Catalog | None = None) -> Catalog:
    """A catalog file as written (not merged); CatalogError names the file and line of each problem. With
    `base`, it is checked as a file to merge over that catalog (`loader.Claims`)."""
    try:
        text = read_text(path)
    except OSError as exc:
        raise CatalogError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except ValueError as exc:
        raise CatalogError([f"{path}: {exc}"]) from exc
    return _build(parse_catalog(text, source=str(path), claims=base.claims() if base is not None else None))


def parse_catalog_text(text: str, source: str = "catalog", *, base: Catalog | None = None) -> Catalog:
    return _build(parse_catalog(text, source=source, claims=base.claims() if base is not None else None))


def _build(raw: Iterable[dict[str, object]]) -> Catalog:
    vendors = []
    for v in raw:
        name = str(v["name"])
        res: tuple[str, ...] = tuple(v.get("resources", ()))  # type: ignore[call-overload,arg-type]  # () = kept
        models = tuple(ModelEntry(str(m["name"]), name, int(m.get("memoryMiB", 0)),  # type: ignore[union-attr,call-overload]
                                  str(m.get("resource") or (res[0] if res else "")),  # type: ignore[union-attr]
                                  str(m.get("family", "")), int(m.get("aiCores", 0)),  # type: ignore[union-attr,call-overload]
                                  tuple(m.get("labelValues", ())), int(m.get("perNode", 0)))  # type: ignore[union-attr,call-overload]
                       for m in v.get("models", ()))  # type: ignore[attr-defined]
        dra = tuple(DraDriverEntry(str(d["driver"]), str(d.get("deviceClass") or d["driver"]),
                                   str(d.get("productAttribute", "productName")),
                                   str(d.get("memoryCapacity", "memory")),
                                   str(d.get("typeAttribute", "type")), str(d.get("deviceType", "gpu")))
                    for d in v.get("dra", ()))  # type: ignore[attr-defined]
        vendors.append(VendorEntry(name, res, tuple(v.get("productLabel", ())),  # type: ignore[arg-type]
                                   tuple(v.get("memoryLabel", ())),  # type: ignore[arg-type]
                                   str(v.get("memoryUnit", "Mi")), str(v.get("modelPrefix", "")),
                                   tuple(sorted(dict(v.get("sharing", {})).items())),  # type: ignore[call-overload]
                                   models, str(v.get("defaultModel", "")), dra))
    return Catalog(tuple(vendors))


@cache
def builtin_catalog() -> Catalog:
    text = resources.files("federator.catalog").joinpath("accelerators.yaml").read_text()
    return parse_catalog_text(text, source="accelerators.yaml (built in)")


_active: list[Catalog] = []
# A client's view (client_view): set only while a client (`federator submit`) reads its job files, in its own
# context, so a federator in the same process (tests, demo) keeps its catalog and its authority.
_view: ContextVar[Catalog | None] = ContextVar("federator_client_catalog", default=None)


def catalog() -> Catalog:
    """The process's catalog: the built-in one, extended by the operator's file if one was given (or, while a
    client reads its job files, the client's view: client_view)."""
    view = _view.get()
    if view is not None:
        return view
    return _active[-1] if _active else builtin_catalog()


def use_catalog_file(path: Path | None) -> Catalog:
    """Extend the built-in catalog with an operator's file for this process (serve, agent, sim)."""
    base = builtin_catalog()
    active = base if path is None else base.merged(load_catalog_file(path, base=base))
    _active[:] = [active]
    return active


def client_catalog(path: Path | None) -> Catalog:
    """A client's catalog (`federator submit --accelerator-catalog`): the built-in one, extended by the
    operator's file if the user was given it; CatalogError as for serve."""
    base = builtin_catalog()
    return base if path is None else base.merged(load_catalog_file(path, base=base))


@contextmanager
def client_view(cat: Catalog) -> Iterator[Catalog]:
    """Read job files as a client: with `cat`, which is not the authority. The federator checks every job again
    with its own catalog (server/intake.py), so a vendor `cat` lacks, one the network's operator added, is left
    for the federator to judge (outside QA, vendors V1: the CLI refused every job of such a vendor, which the
    federator would take)."""
    token = _view.set(cat)
    try:
        yield cat
    finally:
        _view.reset(token)


def is_client_catalog() -> bool:
    """Whether job files are being read as a client (client_view), whose catalog's gaps the federator judges."""
    return _view.get() is not None


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
    "DraDriverEntry",
    "ModelEntry",
    "VendorEntry",
    "builtin_catalog",
    "catalog",
    "client_catalog",
    "client_view",
    "is_client_catalog",
    "load_catalog_file",
    "memory_mib_of_label",
    "parse_catalog_text",
    "use_catalog_file",
]
