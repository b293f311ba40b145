"""A pod template's own pin on the label the agent pins the placed model with: kept only where placement honours it.

Its own module because the federator (the submit check, `server/templates`) and the agent (the renderer,
`backends/kube/workloads/common.render_accelerators`) must agree on it. Pure: plain dicts in and out; the
accelerator catalog is data.

On a Kubernetes member the agent pins each pod that asks for accelerators to the pool it was placed on with a
nodeSelector (`backends/kube/devices.py`): a whole-device, HAMi or time-sliced pool by its vendor's product label
(`nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3`, `huawei.com/npu.chip.name: 910B3`, Cambricon's bare `Model`), an
Ascend vNPU partition by its chip's label (`huawei.com/npu.chip.name: 310P3`), an NVIDIA MIG partition by its
profile's own label (`nvidia.com/mig-1g.10gb.product`), a DRA pool by no label at all. Placement knows pools, not
node labels, so a template pinning one of those labels itself is honoured only when every pool its job's models
can select carries that very value. Before 0.19.0 the agent wrote its value over the template's: a rollout role
pinned to L4s ran on an H100 (outside QA, ML platform E1). The first check (qaml60) asked whether each model
*selected* the pin, the wrong way round: `A100` selects NVIDIA-A100-SXM4-80GB, and also the 40 GB pool, where the
80 GB pin was replaced (outside QA new60, N1); and it read every vendor's label whatever the job asked, refusing an
NVIDIA job with a site's own `Model` label (N9) and the parent product pin of a MIG job, which the agent never
touches (N8).

The rule here: a label is judged only for a way the job may run (`AcceleratorAlternative`: spec.acceleratorModels
is one per model, of the default vendor) whose pools the agent pins by that label; it is kept when the way names
exactly the pinned model (`same_model`), so that every pool it selects carries the value, and refused otherwise,
naming the model to write. The agent holds the same line at launch (`conflicts`): it never replaces a template's
value; a placement whose pool says otherwise is refused there, naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.catalog import VendorEntry, catalog
from federator.model.accelerator import AcceleratorAlternative, accepts_model, prefixed_model
from federator.model.sharing import names_partition

MIG_PRODUCT_LABEL = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb)\.product$")
"""The label GPU feature discovery names a MIG profile's product with, the one the agent pins a MIG pool by."""
MIG_VENDOR = "nvidia"  # the vendor whose partitions are MIG profiles (devices.py `_mig_groups`)
AMD_PARTITION_MODES = ("CPX", "DPX", "QPX", "TPX")  # an AMD partition pool's model: <GPU model>-CPX-NPS4
VNPU_MARKER = "VNPU"  # an Ascend vNPU pool's model: <chip model>-vNPU-<template> (backends/kube/vnpu.py)
REQUIRED_AFFINITY = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"  # under a template
PROBLEM_ROOM = 400  # jobfile.MAX_PROBLEM_CHARS: a longer message is cut, so the advice on roles goes first
_TOKENS = re.compile(r"[-_ ./]+")


def _tokens(name: str) -> list[str]:
    return [t for t in _TOKENS.split(name.upper()) if t]


def same_model(a: str, b: str) -> bool:
    """Whether two model names are one (the same words, any case or separators): what a pin is kept against."""
    return bool(_tokens(a)) and _tokens(a) == _tokens(b)


@dataclass(frozen=True, slots=True)
class Way:
    """One way a job may run, as the pin check reads it: its index in spec.accelerators (-1 for the one-count form:
    spec.acceleratorModels), the alternative, and where the user wrote its model."""

    index: int
    alternative: AcceleratorAlternative

    @property
    def field(self) -> str:
        return "spec.acceleratorModels" if self.index < 0 else f"spec.accelerators[{self.index}].model"


def ways_of(alternatives: Sequence[AcceleratorAlternative], *, one_count: bool) -> list[Way]:
    """The job's ways (`JobSpec.alternatives()`); `one_count`: they come from spec.acceleratorModels."""
    return [Way(-1 if one_count else i, a) for i, a in enumerate(alternatives)]


def _vendors(alt: AcceleratorAlternative) -> list[VendorEntry]:
    """The vendors whose pools the way may be placed on: its own, its resource's, those the catalog says its model
    is of; every vendor for a way naming none of these (any accelerator, or a model the catalog does not know)."""
    cat = catalog()
    if alt.vendor:
        return [v for v in cat.vendors if v.name == alt.vendor]
    owner = cat.vendor_of_resource(alt.resource_name) if alt.resource_name else None
    if owner is not None:
        return [owner]
    known = [v for v in cat.vendors if alt.model and cat.selects(alt.model, v.name)]
    return known or list(cat.vendors)


def _stamped(key: str, vendor: VendorEntry) -> str:
    """How the agent uses `key` for pools of `vendor`: "product" (its product label, a vNPU's chip label too),
    "mig:<profile>" (an NVIDIA MIG profile's label), "" (never: the label is the user's)."""
    if key in vendor.product_labels:
        return "product"
    match = MIG_PRODUCT_LABEL.match(key)
    return f"mig:{match.group(1)}" if match and vendor.name == MIG_VENDOR else ""


def _pinned_model(stamp: str, vendor: VendorEntry, value: str) -> str:
    """The model a way must name for the pin to be what the agent writes on every pool it selects: the catalog's
    model the label's value names (its prefix put in front, 910B3 -> Ascend910B3; one of a model's labelValues,
    AMD_Instinct_MI300X_OAM -> AMD-Instinct-MI300X), as the agent names the pool (backends/kube/discovery.py)."""
    if stamp != "product":
        return value
    named = next((m.name for m in vendor.models if value.lower() in (v.lower() for v in m.label_values)), "")
    return named or prefixed_model(vendor.model_prefix, value)


def label_spelling(vendor: VendorEntry, value: str) -> str:
    """How the vendor's labeller writes the product a pin of `value` names in the catalog's spelling ("" when
    `value` is no catalog spelling of one, or is the label's own): MindCluster labels the chip 910B3, not
    Ascend910B3; AMD's labeller AMD_Instinct_MI300X_OAM, not AMD-Instinct-MI300X. Such a pin matched no node: the
    submit check kept it (and its own advice led users to write it), the member refused it for ever (vendqa61 V6)."""
    for m in vendor.models:
        if m.label_values and same_model(value, m.name) and value not in m.label_values:
            return m.label_values[0]
    prefix = vendor.model_prefix
    if prefix and value.lower().startswith(prefix.lower()) and len(value) > len(prefix):
        if any(m.name.lower() == value.lower() for m in vendor.models):
            return value[len(prefix):]
    return ""


def _spelling_problem(key: str, values: Sequence[str], ways: Sequence[Way]) -> str:
    """Why a pin on a vendor's product label can match no node ("" when it may): it writes the model as the
    catalog spells it, not as the labeller labels the nodes."""
    for way in ways:
        for vendor in _vendors(way.alternative):
            if _stamped(key, vendor) != "product":
                continue
            wrong = [(v, carried) for v in values if (carried := label_spelling(vendor, v))]
            if wrong and len(wrong) == len(values):
                value, carried = wrong[0]
                return (f"pins the pods to {value!r}, the catalog's name of the model, but {vendor.name} nodes carry "
                        f"{key}={carried} (as the labeller writes it), so no node matches: pin {carried!r}, or drop "
                        f"the pin (the agent pins the placed pool itself)")
    return ""


def _foreign_label_problem(key: str, ways: Sequence[Way]) -> str:
    """Why a pin on another vendor's product label matches no node the job may run on ("" when it may): every
    way's pools are of vendors other than the label's, whose labeller alone sets it (vendqa61 V6: a
    huawei.com/npu.chip.name pin on an amd.com/gpu job, refused by the member for ever). Only a label in the
    vendor's own domain (huawei.com/...) is judged: a bare key such as Cambricon's Model may be a site's own."""
    cat = catalog()
    owners = [v for v in cat.vendors if key in v.product_labels and "/" in key
              and any(key.split("/", 1)[0].endswith(r.split("/", 1)[0]) for r in v.resources)]
    if not owners or not ways:
        return ""
    mine: set[str] = set()
    for way in ways:
        alt = way.alternative
        if not (alt.vendor or alt.resource_name):
            return ""  # a way of any vendor, or named only by model: the label's vendor may be placed
        mine.update(v.name for v in _vendors(alt))
    if any(o.name in mine for o in owners):
        return ""
    return (f"is {owners[0].name}'s product label, but the job's accelerators are {', '.join(sorted(mine))}'s, "
            f"whose nodes never carry it, so no node matches: drop the pin")


def _honoured(alt: AcceleratorAlternative, vendor: VendorEntry, stamp: str, value: str) -> bool:
    """Whether every pool of `vendor` the way may be placed on that the agent pins by this label carries `value`."""
    model, pinned = alt.model, _pinned_model(stamp, vendor, value)
    if stamp == "product":
        if model and names_partition(model):
            upper = model.upper()
            if VNPU_MARKER in upper:  # pinned by the chip's label: the chip is the name before the marker
                chip = model[:upper.index(VNPU_MARKER)].rstrip("-_ ./")
                return bool(chip) and same_model(prefixed_model(vendor.model_prefix, chip), pinned)
            if vendor.name == MIG_VENDOR:
                return True  # a MIG pool is pinned by its profile's label: the parent product stays the user's
            words = _tokens(model)
            mode = next((i for i, w in enumerate(words) if w in AMD_PARTITION_MODES), -1)
            if mode > 0:  # an AMD partition pool is pinned by its GPU's product label: the GPU is the name before
                selected = [m.name for m in catalog().models(vendor.name)  # the mode, and must be the pin's alone
                            if accepts_model("-".join(words[:mode]), m.name, m.family)]
                return len(selected) == 1 and same_model(selected[0], pinned)
        return same_model(model, pinned)
    profile = stamp.removeprefix("mig:")
    if model and not names_partition(model) and alt.milli % 1000 == 0:
        return True  # whole devices of a partition pool only for a job naming a partition (scheduler `_shape_ok`)
    if model and names_partition(model) and profile.upper().replace(".", "") not in model.upper().replace(".", ""):
        return True  # another profile: never on this profile's pools
    return same_model(model, pinned)


def _others(model: str, pinned: str, vendor: VendorEntry) -> list[str]:
    """Catalog models of `vendor` a way's model selects besides the pinned one (for the message)."""
    return [m.name for m in catalog().models(vendor.name)
            if accepts_model(model, m.name, m.family) and not same_model(m.name, pinned)][:3]


def pinned_model_problems(template: Mapping[str, Any], at: str, *, ways: Sequence[Way]) -> list[tuple[str, str]]:
    """A pod template's own nodeSelector on a label the agent pins the placed pool with, for some way of `ways` (the
    ways that render this template), whose value placement does not honour (module docstring); and such a pin on
    a template some of those ways render on another vendor's nodes, which have no such label. `at`: the
    template's path. A required node affinity `In` on a vendor's product label is judged by the same rule
    (`affinity_pins`): the agent's nodeSelector and it must both match a node."""
    spec = template.get("spec") if isinstance(template, Mapping) else None
    selector = spec.get("nodeSelector") if isinstance(spec, Mapping) else None
    found = []
    if isinstance(selector, Mapping):
        for key, value in selector.items():
            if isinstance(key, str) and isinstance(value, str):
                said = _judged(key, [value], ways, product_only=False)
                if said:
                    found.append((f"{at}.spec.nodeSelector[{key}]", said))
    for term, key, values in affinity_pins(template):
        said = _judged(key, values, ways, product_only=True)
        if said:  # the term's path in the problem: with a workload's path the whole field passed MAX_FIELD_CHARS
            found.append((f"{at}.{REQUIRED_AFFINITY}", f"{term} ({key} In) {said}"))
    for term, key, values in affinity_pins(template, operator="NotIn"):
        said = _excluded(key, values, ways)
        if said:
            found.append((f"{at}.{REQUIRED_AFFINITY}", f"{term} ({key} NotIn) {said}"))
    return found


def _excluded(key: str, values: Sequence[str], ways: Sequence[Way]) -> str:
    """Why a `NotIn` of `values` on a product label leaves some way no pool it could run on ("" when none): the way
    names exactly one of the values, or every catalog model of the vendor its model selects is among them. Such a
    job passed submit and was refused by the member at every launch (outside QA new60b N10)."""
    for way in ways:
        alt = way.alternative
        if not alt.model or names_partition(alt.model):
            continue  # any model, or a partition pool (MIG, vNPU) the agent pins by another label: the user's
        for vendor in _vendors(alt):
            if _stamped(key, vendor) != "product":
                continue
            out = [_pinned_model("product", vendor, v) for v in values if v]
            selected = [m.name for m in catalog().models(vendor.name) if accepts_model(alt.model, m.name, m.family)]
            if any(same_model(alt.model, o) for o in out) or (
                    selected and all(any(same_model(m, o) for o in out) for m in selected)):
                where = "" if way.index < 0 else f" ({way.field})"
                return (f"excludes {', '.join(map(repr, values))}, every pool {alt.model!r}{where} may be placed on "
                        f"(the agent sets {key} to the placed pool's value), so the job could never run: remove the "
                        f"expression, or name another model in {way.field}")
    return ""


def affinity_pins(template: Mapping[str, Any], *, operator: str = "In") -> list[tuple[str, str, list[str]]]:
    """(the expression's path under REQUIRED_AFFINITY, label, values) of each `operator` expression (`In`, or
    `NotIn` for `_excluded`) on a vendor's product label in the template's required node affinity, when it has one
    term: several terms are ORed, one may match the placed pool, and are left alone. Other operators (Exists, ...)
    are the user's too (users.md says so)."""
    spec = template.get("spec") if isinstance(template, Mapping) else None
    affinity = spec.get("affinity") if isinstance(spec, Mapping) else None
    node = affinity.get("nodeAffinity") if isinstance(affinity, Mapping) else None
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution") if isinstance(node, Mapping) else None
    terms = required.get("nodeSelectorTerms") if isinstance(required, Mapping) else None
    if not isinstance(terms, list):
        return []
    labels = {label for v in catalog().vendors for label in v.product_labels}
    found = []
    for i, term in enumerate(terms):
        exprs = term.get("matchExpressions") if isinstance(term, Mapping) else None
        for j, expr in enumerate(exprs if isinstance(exprs, list) else []):
            if not isinstance(expr, Mapping) or expr.get("operator") != operator or expr.get("key") not in labels:
                continue
            values = expr.get("values")
            if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
                found.append((f"nodeSelectorTerms[{i}].matchExpressions[{j}]", str(expr["key"]), list(values)))
    return found if len(terms) == 1 else []  # several terms are ORed: one may be the placed pool's; left alone


def _judged(key: str, values: Sequence[str], ways: Sequence[Way], *, product_only: bool) -> str:
    """Why a pin of `key` to one of `values` is not honoured for `ways` ("" when it is), with the fix."""
    wrong = _spelling_problem(key, values, ways) or _foreign_label_problem(key, ways)
    if wrong:
        return wrong
    reasons, fixes, carries, move = [], [], [], ""
    for way in ways:
        alt = way.alternative
        judged = [(v, s) for v in _vendors(alt) if (s := _stamped(key, v)) and (s == "product" or not product_only)]
        if not judged:
            carries.append(way)
            continue
        for vendor, stamp in judged:
            if any(_honoured(alt, vendor, stamp, value) for value in values):
                continue
            value = values[0]
            pinned = _pinned_model(stamp, vendor, value)
            where = "" if way.index < 0 else f" ({way.field})"
            if not value:
                reasons.append(f"no {vendor.name} pool has an empty value")
            elif not alt.model:
                reasons.append(f"the job names no model{where}: any {vendor.name} model may be placed")
            elif not accepts_model(alt.model, pinned):
                reasons.append(f"{alt.model!r}{where} is not {pinned}")
            else:
                others = _others(alt.model, pinned, vendor)
                also = f"{', '.join(others)}, ..." if others else f"other {vendor.name} models"
                reasons.append(f"{alt.model!r}{where} also selects {also}")
            if value:
                fixes.append(f"name {pinned} in {way.field}")
            break
    if carries and len(carries) < len(ways):  # the pin's vendor for some ways, another's for these
        names = ", ".join(f"{w.alternative.model or 'any model'} ({w.field})" for w in carries)
        reasons.append(f"{names} runs on nodes without it")
        mine = ", ".join(f"spec.accelerators[{w.index}].template" for w in ways if w not in carries)
        move = f"move the pin into {mine}"
    if not reasons:
        return ""
    shown = " or ".join(f"{v!r}" if v else "an empty value" for v in values)
    fix = "; ".join([*(["; ".join(dict.fromkeys(fixes)) + " (the pin may stay)"] if fixes else []),
                     *([move] if move else [])]) or "remove it"
    said = (f"pins the pods to {shown}, but the agent sets {key} to the placed pool's value, and "
            f"{'; '.join(dict.fromkeys(reasons))}: {fix}")
    tail = ". One job, one model: a role on other accelerators is a job of its own"
    return said + tail if len(said + tail) <= PROBLEM_ROOM else said


def conflicts(pod: Mapping[str, Any], selector: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(label, the template's value, the agent's) for each label of `selector` (what the agent pins a placement's
    pool by) that the pod spec's own nodeSelector gives another value: the agent never replaces such a pin."""
    own = pod.get("nodeSelector") if isinstance(pod, Mapping) else None
    if not isinstance(own, Mapping):
        return []
    return [(k, str(own[k]), v) for k, v in selector.items() if k in own and own[k] != v]


__all__ = ["MIG_PRODUCT_LABEL", "Way", "affinity_pins", "conflicts", "label_spelling", "pinned_model_problems",
           "same_model", "ways_of"]
