"""A job file's accelerators: `spec.resources`' accelerator count, `spec.accelerators` (the alternatives, each a
model, vendor, count and template of its own), `spec.acceleratorModels`, each checked naming the field; and an
alternative written back to its document (`alternative_document`, for `spec_to_document`).

Why a module of its own: it is the one part of a job file that reads the accelerator catalog (vendors, their
resource names and product lines), and it was a third of jobfile.py (938 lines, past the house's ~600;
review59 R11). jobfile.py parses the rest of the document and calls these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from federator.catalog import catalog, is_client_catalog
from federator.model import AcceleratorAlternative, QuantityError, Resources, to_bytes, to_milli
from federator.partition_asks import partition_hint
from federator.termtext import shown

GPU_RESOURCE = "nvidia.com/gpu"  # the one-count form's resource: what job files asked for before vendors
MAX_ALTERNATIVES = 16
MAX_ACCELERATORS_PER_REPLICA = 64
_GPU_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_MODELS = 256
"""Accelerator models a job may list: more than any fleet has."""


def parse_resources(value: object, bad: Any, has_alternatives: bool) -> tuple[Resources, str]:
    """Per-replica cpu, memory and (at most one) accelerator resource; the resource name asked for."""
    known = catalog().resource_names
    if value is None:
        # with alternatives the accelerator count is theirs: a hint to add GPU_RESOURCE here led to another refusal
        ask = "cpu and memory; the accelerators' count is in spec.accelerators" if has_alternatives else \
            f"cpu, memory, {GPU_RESOURCE}"
        bad("spec.resources", f"is required (per replica: {ask})")
        return Resources(), ""
    if not isinstance(value, Mapping):
        bad("spec.resources", f"must be a mapping, got {type(value).__name__}")
        return Resources(), ""
    cpu = memory = devices = 0
    name = ""
    unread = False  # a resource was given but could not be read: it asked for something, just not well
    for key, raw in value.items():
        field = f"spec.resources.{str(key)[:63]}"
        try:
            if key == "cpu":
                cpu = to_milli(raw)
            elif key == "memory":
                memory = to_bytes(raw)
            elif key in known:
                if name:
                    bad(field, f"a replica asks for one kind of accelerator, here also {name}; "
                               "list alternatives in spec.accelerators")
                    continue
                if has_alternatives:
                    bad(field, "give the count in spec.accelerators when the job lists alternatives")
                    continue
                name, devices = str(key), to_milli(raw)
                problem = _count_problem(devices, raw)
                if problem:
                    bad(field, problem)
            elif hint := partition_hint(str(key), raw):
                bad(field, hint)
                unread = True  # it asked for a partition, just not the way a job asks one
            elif is_client_catalog():  # the federator's operator may have added it: say how to reach it from here
                bad(field, "is not a resource this CLI knows: for a vendor the federator's operator added, give "
                           "submit their catalog file (--accelerator-catalog FILE), or ask by vendor in "
                           "spec.accelerators, which the federator checks (known here: cpu, memory, "
                           f"{', '.join(known)})")
            else:
                bad(field, f"is not a known resource (known: cpu, memory, {', '.join(known)}; "
                           "operators add vendors with --accelerator-catalog)")
        except QuantityError as exc:
            bad(field, str(exc))
            unread = True
    if cpu == 0 and memory == 0 and devices == 0 and not has_alternatives and not unread:
        bad("spec.resources", f"asks for nothing; set cpu, memory or an accelerator such as {GPU_RESOURCE}")
    return Resources(cpu_milli=cpu, memory_bytes=memory, accelerator_milli=devices), name


def _count_problem(milli: int, raw: object) -> str:
    """What is wrong with an accelerator count of `milli` per replica, written `raw` in the file ("" if nothing)."""
    if milli > MAX_ACCELERATORS_PER_REPLICA * 1000:
        return f"at most {MAX_ACCELERATORS_PER_REPLICA} accelerators per replica, got {shown(raw)}"
    if milli > 1000 and milli % 1000:
        return f"a replica takes a fraction of one accelerator or whole accelerators, not {shown(raw)}"
    return ""


_ALT_KEYS = ("model", "vendor", "count", "minMemoryMiB", "template")


def parse_alternatives(value: object, bad: Any) -> tuple[AcceleratorAlternative, ...]:
    """spec.accelerators: [{model, vendor, count, minMemoryMiB, template}], most preferred first."""
    if not isinstance(value, list) or not value:
        bad("spec.accelerators", "must be a non-empty list such as [{model: H100, count: 8}, "
                                 "{model: Ascend910B, count: 8}]")
        return ()
    if len(value) > MAX_ALTERNATIVES:
        bad("spec.accelerators", f"at most {MAX_ALTERNATIVES} alternatives, got {len(value)}")
        return ()
    cat = catalog()
    out: list[AcceleratorAlternative] = []
    for i, item in enumerate(value):
        where = f"spec.accelerators[{i}]"
        if not isinstance(item, Mapping):
            bad(where, "must be a mapping {model, vendor, count, minMemoryMiB, template}")
            continue
        for key in item:
            if key == "resource_name":
                bad(f"{where}.resource_name", "is set from the one-count form only (spec.resources: {"
                                              f"{item[key]!s:.63}: N}}, with acceleratorModels), never beside a "
                                              "template, minMemoryMiB or another count or vendor")
            elif key not in _ALT_KEYS:
                bad(f"{where}.{key}", f"is not a known field (known: {', '.join(_ALT_KEYS)})")
        model, vendor = item.get("model", ""), item.get("vendor", "")
        if not isinstance(model, str) or (model and not _GPU_MODEL.match(model)):
            bad(f"{where}.model", f"must be a model name such as 'H100' or 'Ascend910B', got {model!r}")
            model = ""
        elif model and cat.is_placeholder(model):
            bad(f"{where}.model", placeholder_problem(model))
            model = ""
        if not isinstance(vendor, str) or (vendor and cat.vendor(vendor) is None and not _left_to_federator(vendor)):
            bad(f"{where}.vendor", f"unknown vendor {vendor!r} (known: {', '.join(cat.vendor_names)})")
            vendor = ""
        if model and vendor and (entry := cat.find_model(model)) is not None and entry.vendor != vendor:
            bad(f"{where}.vendor", f"{model} is {_a(entry.vendor)} model, not {vendor}")
        elif model and vendor and (generic := cat.vendor_of_generic(model)) and generic != vendor:
            bad(f"{where}.vendor", f"{model} names any {generic} model, not {vendor}")
        min_mem = item.get("minMemoryMiB", 0)
        if isinstance(min_mem, bool) or not isinstance(min_mem, int) or min_mem < 0:
            bad(f"{where}.minMemoryMiB", f"must be a positive integer (MiB per device), got {min_mem!r}")
            min_mem = 0
        milli = 0
        if "count" not in item:
            bad(f"{where}.count", "is required (accelerators per replica)")
        else:
            try:
                milli = to_milli(item["count"])
                problem = "must be more than 0" if milli <= 0 else _count_problem(milli, item["count"])
                if problem:
                    bad(f"{where}.count", problem)
            except QuantityError as exc:
                bad(f"{where}.count", str(exc))
        template = item.get("template")
        template_json = ""
        if template is not None:
            if not isinstance(template, Mapping):
                bad(f"{where}.template", "must be a pod template override (a mapping), e.g. "
                                         "{spec: {containers: [{image: ...}]}}")
            else:
                template_json = json.dumps(template, sort_keys=True)
        if model and (problem := worth_problem(model, "", vendor, milli, "a replica")):
            bad(f"{where}.model", problem)
        out.append(AcceleratorAlternative(milli, model, vendor, min_mem, template_json))
    return tuple(out)


_VENDOR_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,62})$")  # as the catalog's (catalog/loader.py)


def _left_to_federator(vendor: str) -> bool:
    """Whether a vendor the process's catalog lacks is left for the federator to judge: in a client (`federator
    submit`), whose catalog is not the network's, a well-formed name may be a vendor the operator added."""
    return is_client_catalog() and bool(_VENDOR_NAME.match(vendor))


def _a(word: str) -> str:
    """`word` with its indefinite article, by its first letter: "an amd", "an intel", "a huawei"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def one_vendor(models: tuple[str, ...], field: str, bad: Any, *, workload: bool = False,
                resource: str = GPU_RESOURCE) -> bool:
    """The one-count form's resource belongs to one vendor's device plugin, and the scheduler keeps such a job
    on that vendor's pools: a model of another vendor in acceleratorModels could never be served. Said of the
    field the user wrote (outside QA, ML user F10: `amd.com/gpu` with an A100 was blamed on a
    `spec.accelerators[0].vendor` the file did not have). Whether it found one."""
    cat = catalog()
    owner = cat.vendor_of_resource(resource)
    found = False
    for i, model in enumerate(models):
        entry = cat.find_model(model)  # memoized by the catalog: this runs on every one-count Submit
        if owner is not None and entry is not None and entry.vendor != owner.name:
            other = cat.vendor(entry.vendor)
            ask = f"ask for {other.resource_name}" if other is not None and other.resource_name else ""
            if workload:  # the workload's containers name the resource; alternatives are the federator's pods'
                fix = "its containers must " + (ask or "ask for that vendor's device plugin resource")
            else:
                fix = f"{ask + ', or ' if ask else ''}list alternatives in spec.accelerators"
            bad(f"{field}[{i}]", f"{model} is {_a(entry.vendor)} model, but {resource} asks for "
                                 f"{owner.name} devices: {fix}")
            found = True
    return found


def product_line(models: tuple[str, ...], field: str, bad: Any, resource: str, vendor: str) -> None:
    """A vendor whose device plugin has a resource per product line serves `resource` only from pools of it
    (scheduler: an alternative's resource_name): a model of the vendor's other lines could never be served."""
    for i, model in enumerate(models):
        entry = catalog().find_model(model, vendor)
        if entry is not None and entry.resource_name and entry.resource_name != resource:
            bad(f"{field}[{i}]", f"{model} is a {entry.resource_name} model, but spec.resources asks for {resource}: "
                                 f"ask for {entry.resource_name}, or list both in spec.accelerators")


_VNPU_CORES = re.compile(r"(?:^|-)vNPU-(\d+)c", re.IGNORECASE)


def partition_worth(models: tuple[str, ...], field: str, bad: Any, resource: str, vendor: str, milli: int) -> None:
    """A fraction larger than every named vNPU template is worth of any chip of `resource` could never be served:
    it waited for ever, `SharingUnavailable` (vendor QA vendqa61 V11). A template of N AI cores is worth N/aiCores of
    a chip (backends/kube/vnpu.py `unit_milli`); the most it is worth over the catalog's chips of the resource bounds
    the replica's fraction (a chip without `aiCores` in the catalog offers no vNPU: kubernetes.md)."""
    for i, model in enumerate(models):
        problem = worth_problem(model, resource, vendor, milli, "spec.resources")
        if problem:
            bad(f"{field}[{i}]", problem)


def worth_problem(model: str, resource: str, vendor: str, milli: int, asks: str) -> str:
    """Why a replica asking `milli` of one `model` vNPU template could never take one ("" if it could): `resource`
    "" for any chip of `vendor` ("" for any vendor), as an alternative of spec.accelerators may be placed on; `asks`
    names the field the fraction was written in. Also at Submit of a JobSpec a client built (server/api_specs.py
    runs this module): spec.accelerators' form skipped it and waited for ever (vendqa61 V11 on the gRPC path)."""
    if not 0 < milli < 1000:
        return ""  # whole counts name partitions by number (`count: 2` is two of them)
    found = _VNPU_CORES.search(model)
    if not found:
        return ""
    firsts = {v.name: v.resources[0] for v in catalog().vendors if v.resources}
    chips = [m.ai_cores for m in catalog().models(vendor or None)
             if m.ai_cores and resource in ("", m.resource_name or firsts.get(m.vendor, ""))]
    cores = int(found.group(1))
    hosts = [c for c in chips if 0 < cores <= c]  # the chips a template of that many cores can be cut from
    worth = max((cores * 1000 // c for c in hosts), default=0)
    if not worth or milli <= worth:
        return ""
    chip = f"a {resource} chip" if resource else f"{_a(vendor)} chip" if vendor else "a chip"
    return (f"one {model} partition ({cores} AI cores; {chip} has {min(hosts)} to {max(hosts)}) is worth at most "
            f"{worth}m of a chip, less than the {milli}m {asks} asks, so no replica could ever take one: ask at "
            f"most {worth}m, or name a larger template")


def one_count(alternatives: tuple[AcceleratorAlternative, ...]) -> tuple[str, int, list[str]] | None:
    """(resource, milli, models) when the alternatives are what the one-count form of a per-product-line
    resource makes (parse_job), so that the document says it as the user wrote it; None otherwise."""
    if not alternatives or not alternatives[0].resource_name:
        return None
    first = alternatives[0]
    owner = catalog().vendor_of_resource(first.resource_name)
    if owner is not None and first.vendor != owner.name:  # an API client's resource of another vendor
        return None
    for a in alternatives:
        if (a.resource_name, a.milli, a.vendor) != (first.resource_name, first.milli, first.vendor) \
                or a.min_memory_mib or a.pod_template_json or (len(alternatives) > 1 and not a.model):
            return None
    return first.resource_name, first.milli, [a.model for a in alternatives if a.model]


def placeholder_problem(model: str) -> str:
    """Why a placeholder model name (`Catalog.placeholder_models`) is refused, said the same on every path, with
    the advice of its vendor: the models of the devices it stood for, and `vendor:` for any of that vendor's (an
    'H100' and "leave it out for any vendor" told a Huawei user nothing: outside QA, vendors2 R4)."""
    cat = catalog()
    owners = [(v, r) for v in cat.vendors if v.product_labels for r in v.resources
              if v.unlabelled_model(r).lower() == model.lower()]
    if len(owners) != 1:
        return (f"{model!r} names no accelerator model: it is what devices on a node without their product label "
                "were once called, and such devices are not offered (a pod could not be pinned to them); name a "
                "model such as 'H100', or leave the field out for any")
    vendor, resource = owners[0]
    names = list(dict.fromkeys(m.family or m.name for m in vendor.models if m.resource_name == resource))
    some = f"a model of them such as {', '.join(repr(n) for n in names[:3])}, or " if names else "a model, or "
    return (f"{model!r} names no accelerator model: it is what {vendor.name} devices ({resource}) on a node without "
            "their product label were once called, and the federator's agent does not offer such devices (a pod "
            f"could not be pinned to them); name {some}ask by vendor ({{vendor: {vendor.name}, count: N}} in "
            f"spec.accelerators) for any {vendor.name} device")


def parse_accelerator_models(value: object, field: str, bad: Any) -> tuple[str, ...]:
    """spec.acceleratorModels (or its old name, the `field` the user wrote): a list, or 'H100|A100'."""
    if value is None:
        return ()
    items: list[object]
    if isinstance(value, str):
        items = list(value.split("|"))
    elif isinstance(value, list):
        items = list(value)
    else:
        bad(field, f"must be a list of accelerator models (or 'H100|A100'), got {shown(value)}")
        return ()
    if len(items) > MAX_MODELS:
        bad(field, f"lists {len(items)} models, more than {MAX_MODELS}; name the models, or leave it out for any")
        return ()
    out: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not _GPU_MODEL.match(item):
            bad(f"{field}[{i}]", f"must be an accelerator model name such as 'H100', got {shown(item)}")
        elif item in out:
            bad(f"{field}[{i}]", f"repeats {item!r}")
        elif catalog().is_placeholder(item):
            bad(f"{field}[{i}]", placeholder_problem(item))
        else:
            out.append(item)
    return tuple(out)


def alternative_document(a: AcceleratorAlternative) -> dict[str, Any]:
    out: dict[str, Any] = {"count": a.milli // 1000 if a.milli % 1000 == 0 else f"{a.milli}m"}
    if a.model:
        out["model"] = a.model
    if a.vendor:
        out["vendor"] = a.vendor
    if a.min_memory_mib:
        out["minMemoryMiB"] = a.min_memory_mib
    if a.pod_template_json:
        out["template"] = json.loads(a.pod_template_json)
    if a.resource_name:  # from an API client beside what the one-count form makes: parse_job says what is wrong
        out["resource_name"] = a.resource_name
    return out


__all__ = ["GPU_RESOURCE", "MAX_ACCELERATORS_PER_REPLICA", "MAX_ALTERNATIVES", "MAX_MODELS", "alternative_document",
           "one_count", "one_vendor", "parse_accelerator_models", "parse_alternatives", "parse_resources",
           "placeholder_problem", "product_line"]
