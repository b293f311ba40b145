"""What a pod template may ask of accelerators, and which of its containers gets the job's.

Its own module because the federator (the submit check, `server/templates`)
and the agent (the renderer, `backends/kube/workloads`) must agree on both
rules, and neither may import the other. Pure: plain dicts in and out; the
accelerator catalog is data.

The rule: what a job runs on is what it declares (`spec.resources`,
`spec.accelerators`), since quota, fair share, `federator usage` and
`federator_accelerator_seconds_total` count that. A template the agent renders
(`spec.template`, an alternative's override merged over it) therefore asks no
accelerator resource itself and names no DRA claim: the agent writes the
declared accelerators on one container, the *accelerator container*. Before
this rule a template's own `nvidia.com/gpu` in a second container, a sidecar
or a DRA claim ran on a provider's member unaccounted (outside testers, S1).

An *accelerator resource* is any name the catalog knows (each vendor's device
resources, its sharing resources: MIG profiles, time-sliced and HAMi names)
and any other name in one of those vendors' domains (`nvidia.com/...`,
`amd.com/...`, `huawei.com/...`): a device plugin of that vendor may advertise
a name the catalog does not list yet. Extended resources of other domains stay
the user's to ask (`rdma/hca_shared_devices_a` for InfiniBand, an SR-IOV NIC
under `openshift.io/` or `intel.com/`).

Accelerators of vendors the catalog does not model (`UNMODELLED`: Google TPUs, AWS Neuron, Intel GPUs, MetaX,
Iluvatar, Enflame, Moore Threads, Xilinx FPGAs, HAMi's own names) are refused in any template too, with words of
their own: they cannot be declared either, so a member that has them, which its provider does not offer to the
federation, ran them for any tenant, counted by no quota or invoice (secqa61 L3). An operator who wants them adds
their vendor to the catalog (`--accelerator-catalog`): its domain is then a catalog vendor's, the names declared in
`spec.resources` like any other accelerator. The list only names what to refuse until then; it is not a way in.

A brought workload (`spec.workload`) is counted from what its pods ask
(`jobfile`, through `pod_ask`), which sees only the catalog's device resources
in containers and regular init containers. So there, any other accelerator
resource (a MIG profile, a HAMi slot, an unknown name of a vendor's domain),
one on a sidecar or an ephemeral container, and any DRA claim are refused:
none of them would be counted.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from federator.catalog import Catalog, catalog
from federator.partition_asks import partition_hint
from federator.podtemplates import containers_of

ACCELERATOR_CONTAINER_ANNOTATION = "federator.io/accelerator-container"
"""A pod template annotation naming the container the agent writes the job's resources (accelerators included)
on; without it, the first container."""

DECLARE = ("declare accelerators in spec.resources (or spec.accelerators); the agent writes them on the "
           "accelerator container")


def vendor_domains(cat: Catalog | None = None) -> frozenset[str]:
    """The domains of every catalog vendor's resource and sharing names (nvidia.com, amd.com, habana.ai, ...)."""
    cat = cat or catalog()
    names = [r for v in cat.vendors for r in v.resources] + [n for v in cat.vendors for _, n in v.sharing]
    return frozenset(n.split("/", 1)[0] for n in names if "/" in n)


UNMODELLED = ("google.com/tpu*", "cloud-tpus.google.com/*", "aws.amazon.com/neuron*", "gpu.intel.com/*",
              "metax-tech.com/*", "iluvatar.ai/*", "enflame.com/*", "mthreads.com/*", "xilinx.com/fpga-*",
              "hami.io/*")
"""Shell patterns of extended resources that are accelerators of vendors the built-in catalog does not model: a
template may not ask them (see the module). A name in a catalog vendor's domain is that vendor's, not these."""


def unmodelled_accelerator(name: str, cat: Catalog | None = None) -> bool:
    """Whether a resource name is an accelerator the catalog does not model (`UNMODELLED`, outside every catalog
    vendor's domain): a job may neither declare it nor ask it in a template."""
    return not is_accelerator_resource(name, cat) and any(fnmatch.fnmatchcase(name, p) for p in UNMODELLED)


def is_accelerator_resource(name: str, cat: Catalog | None = None) -> bool:
    """Whether a resource name is an accelerator's: one the catalog knows, or any in a catalog vendor's domain."""
    cat = cat or catalog()
    if name in cat.resource_names:
        return True
    domain, slash, _ = name.partition("/")
    return bool(slash) and domain in vendor_domains(cat)


def _pod(template: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = template.get("spec") if isinstance(template, Mapping) else None
    return spec if isinstance(spec, Mapping) else {}


def chosen_name(template: Mapping[str, Any]) -> str:
    """The container name the template's annotation gives ("" without one)."""
    meta = template.get("metadata") if isinstance(template, Mapping) else None
    notes = meta.get("annotations") if isinstance(meta, Mapping) else None
    value = notes.get(ACCELERATOR_CONTAINER_ANNOTATION) if isinstance(notes, Mapping) else None
    return value if isinstance(value, str) else ""


def accelerator_container(template: Mapping[str, Any]) -> int:
    """The index in spec.containers of the container that gets the job's resources: the one the annotation
    names, else the first. A name no container has also gives the first (the submit check refused it; a job
    stored before the check still renders as it did)."""
    containers = _pod(template).get("containers")
    wanted = chosen_name(template)
    for i, c in enumerate(containers if isinstance(containers, list) else ()):
        if wanted and isinstance(c, Mapping) and c.get("name") == wanted:
            return i
    return 0


def choice_problems(template: Mapping[str, Any], at: str) -> list[tuple[str, str]]:
    """The annotation naming a container the template does not have (among spec.containers)."""
    wanted = chosen_name(template)
    containers = _pod(template).get("containers")
    names = [c.get("name") for c in (containers if isinstance(containers, list) else ()) if isinstance(c, Mapping)]
    if not wanted or wanted in names:
        return []
    has = ", ".join(str(n) for n in names if isinstance(n, str)) or "none"
    return [(f"{at}.metadata.annotations[{ACCELERATOR_CONTAINER_ANNOTATION}]",
             f"names container {wanted!r}, which is not in spec.containers (containers: {has}); name the container "
             "that uses the accelerators")]


def rendered_problems(template: Mapping[str, Any], at: str) -> list[tuple[str, str]]:
    """What a template the agent renders (no `spec.workload`) may not ask: any accelerator resource, in any
    container, and any DRA claim."""
    return _claims(template, at) + [
        (where, _unmodelled(name) if unmodelled_accelerator(name) else
         f"a pod template may not ask for an accelerator itself ({DECLARE})")
        for where, name, _, _ in _asks(template, at)]


def _unmodelled(name: str) -> str:
    return (f"{name} is an accelerator of a vendor the accelerator catalog does not model, so the federator "
            "would neither count nor bill it: a job may not ask it. Ask the federation's operator to add its "
            "vendor to the accelerator catalog (--accelerator-catalog; docs/architecture.md, \"The accelerator "
            "model\"), then declare it in spec.resources")


def brought_problems(template: Mapping[str, Any], at: str) -> list[tuple[str, str]]:
    """What a brought workload's pod template may not ask: what the federator would not count (see the module)."""
    devices = set(catalog().resource_names)
    found = _claims(template, at)
    for where, name, key, container in _asks(template, at):
        if key == "ephemeralContainers":
            found.append((where, "an ephemeral container may not ask for an accelerator"))
        elif key == "initContainers" and container.get("restartPolicy") == "Always":
            found.append((where, "a sidecar (an init container with restartPolicy Always) runs beside "
                                 "the containers, and the federator does not count its accelerators: ask them on "
                                 "a container"))
        elif unmodelled_accelerator(name):
            found.append((where, _unmodelled(name)))
        elif hint := partition_hint(name, _amount(container, where)):
            found.append((where, hint))
        elif name not in devices:
            found.append((where, f"the federator counts a workload's accelerators by its device resources "
                                 f"({', '.join(sorted(devices))}) only, so {name} would run uncounted; ask a "
                                 "device resource, or declare the job without spec.workload"))
    return found


def asks_accelerator(template: Mapping[str, Any]) -> bool:
    """Whether a brought workload's pod template asks an accelerator: the agent pins those to the placed model."""
    return bool(_asks(template, ""))


def autoscaler_problems(workload: object, at: str = "spec.workload") -> list[tuple[str, str]]:
    """A Ray cluster's `autoscalerOptions` asking for an accelerator: KubeRay adds it to the head pod as a
    container of its own, which no pod set counts."""
    found: list[tuple[str, str]] = []
    if isinstance(workload, Mapping):
        options = workload.get("autoscalerOptions")
        if isinstance(options, Mapping):
            found += [(where.replace(f"{at}.autoscalerOptions.spec.containers[0]", f"{at}.autoscalerOptions", 1),
                       "the Ray autoscaler's container is counted in no pod set: it may not ask for an accelerator")
                      for where, _, _, _ in _asks({"spec": {"containers": [dict(options)]}},
                                                  f"{at}.autoscalerOptions")]
        for key, value in workload.items():
            found += autoscaler_problems(value, f"{at}.{key}")
    elif isinstance(workload, list):
        for i, item in enumerate(workload):
            found += autoscaler_problems(item, f"{at}[{i}]")
    return found


def _asks(template: Mapping[str, Any], at: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(field, resource name, container list, container) of every accelerator resource a container requests or
    limits."""
    found = []
    for key, i, c in containers_of(_pod(template)):
        resources = c.get("resources")
        for part in ("requests", "limits"):
            amounts = resources.get(part) if isinstance(resources, Mapping) else None
            for name in sorted(amounts) if isinstance(amounts, Mapping) else ():
                if is_accelerator_resource(str(name)) or unmodelled_accelerator(str(name)):
                    found.append((f"{at}.spec.{key}[{i}].resources.{part}[{name}]", str(name), key, c))
    return found


def _amount(container: Mapping[str, Any], where: str) -> object:
    """The quantity written at `where` (`...resources.limits[NAME]`) in `container`, as written."""
    part, _, name = where.rpartition(".resources.")[2].partition("[")
    amounts = (container.get("resources") or {}).get(part) or {}
    return amounts.get(name[:-1], 1) if isinstance(amounts, Mapping) else 1


def _claims(template: Mapping[str, Any], at: str) -> list[tuple[str, str]]:
    """Every DRA claim a pod spec or its containers name: a claim is devices no one counts."""
    pod = _pod(template)
    problem = (f"a job may not name a DRA claim: the devices it holds are not counted ({DECLARE}, as a DRA claim "
               "where the member's devices come from DRA)")
    found = [(f"{at}.spec.resourceClaims", problem)] if pod.get("resourceClaims") else []
    for key, i, c in containers_of(pod):
        resources = c.get("resources")
        if isinstance(resources, Mapping) and resources.get("claims"):
            found.append((f"{at}.spec.{key}[{i}].resources.claims", problem))
    return found


def without_accelerators(pod: dict[str, Any]) -> None:
    """Remove (in place) every accelerator resource and DRA claim a pod spec's containers carry, before the agent
    writes the declared ones: a job stored before the submit rule still runs only what it declared."""
    pod.pop("resourceClaims", None)
    for _, _, c in containers_of(pod):
        resources = c.get("resources")
        if not isinstance(resources, dict):
            continue
        resources.pop("claims", None)
        for part in ("requests", "limits"):
            amounts = resources.get(part)
            if isinstance(amounts, dict):
                resources[part] = {k: v for k, v in amounts.items()
                                   if not is_accelerator_resource(str(k)) and not unmodelled_accelerator(str(k))}


__all__ = ["ACCELERATOR_CONTAINER_ANNOTATION", "DECLARE", "accelerator_container",
           "asks_accelerator", "autoscaler_problems", "brought_problems", "choice_problems", "chosen_name",
           "is_accelerator_resource", "rendered_problems", "unmodelled_accelerator", "vendor_domains",
           "without_accelerators"]
