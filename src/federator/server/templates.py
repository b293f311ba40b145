"""What the pod templates of a submitted job may carry, decided at submit (API and FederatedJob alike).

Kept apart from the job file validator (`jobfile.parse_job`), which checks a
document's shape the same way everywhere, client side included, and also
rebuilds stored jobs: these rules depend on the federator's settings
(`federator serve --pod-security`) and must never make a stored job
unreadable after an upgrade. A job's templates are its `spec.template`, each
accelerator alternative's template merged over it (what the agent renders for
that alternative), and every pod template inside `spec.workload`.

Whatever the level, no object metadata in them may carry finalizers, owner
references or a namespace (`owned_problems`; the agent picks the namespace):
a user's finalizer on a member's workload or pod
holds its deletion on a provider's cluster until someone there removes it by
hand (the agent's cancel never completes), and an owner reference names an
object of the host cluster, or lets a member's garbage collector delete what
the agent made. What a member's objects carry is the agent's to decide. Nor,
whatever the level, what would reach into another job on a shared member
(`security/isolation`: a controller's labels in a pod template, Kueue's,
a Service's external IPs, a RayJob's clusterSelector).

Nor may a field the agent renders into be of the wrong type (`shape_problems`:
`containers: "app"`, a list for `nodeSelector`): the agent could not render it
on any member, so it is refused here, naming the field, rather than refused by
every member in turn with a Python error. Nor a key that is a likely typo of a
Kubernetes field (`containerz`; `podtemplates.key_findings`), nor a pod spec
without containers: the agent would run its placeholder container in place of
the job's (outside QA, F5). Other keys no Kubernetes field has are warnings
(`template_key_warnings`): a newer Kubernetes may have them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from federator.elastic_policy import elastic_problems
from federator.jobfile import FieldProblem
from federator.model import JobKind, JobSpec, format_accelerators, format_bytes
from federator.model.resources import QuantityError, parse_quantity
from federator.model.sharing import names_partition
from federator.partition_asks import TRAINJOB_WHOLE_DEVICES
from federator.podtemplates import (
    AGENT_KEYS,
    MASTER_PORT_ANNOTATION,
    RENDEZVOUS_ENV,
    containers_of,
    containers_problems,
    duplicate_problems,
    key_findings,
    merged_over,
    override_problems,
    shape_problems,
)
from federator.security import isolation
from federator.security.podsecurity import (
    PodSecurity,
    PodSecurityLevel,
    check_object,
    check_template,
    pod_spec_overrides,
    pod_templates,
)
from federator.template_accelerators import (
    ACCELERATOR_CONTAINER_ANNOTATION,
    accelerator_container,
    asks_accelerator,
    autoscaler_problems,
    brought_problems,
    choice_problems,
    chosen_name,
    rendered_problems,
)
from federator.template_pins import Way, pinned_model_problems, ways_of

_OWNED_FIELDS = {
    "finalizers": "not allowed in a job: a finalizer would hold the deletion of the member's object on the "
                  "provider's cluster until someone there removes it by hand",
    "ownerReferences": "not allowed in a job: the agent owns what it creates on a member, and an owner reference "
                       "from a job names an object of another cluster",
    # The member's agent creates a job's objects in the namespace it keeps for the job's queue (or its own), and
    # the contract says so (agent.proto, JobSpec.workload_json). One named here was ignored silently by the
    # reference agent; taken by a third party's agent, it would put a tenant's pods in kube-system, beside the
    # agent's credentials, or in another tenant's namespace (outside red team).
    "namespace": "not allowed in a job: the member's agent picks the namespace of what it creates (the job's "
                 "queue's, or its own); remove it",
}


def owned_problems(spec: JobSpec) -> list[FieldProblem]:
    """Finalizers, owner references, and the agent's placement labels and annotations anywhere in the job's
    templates or its workload object; and what no level allows (`isolation.problems`)."""
    texts = [("spec.template", spec.pod_template_json), ("spec.workload", spec.workload_json)]
    texts += [(f"spec.accelerators[{i}].template", a.pod_template_json) for i, a in enumerate(spec.accelerators)]
    return [FieldProblem(field, problem) for at, text in texts if text
            for field, problem in [*_owned(_object(text), at),
                                   *isolation.problems(_object(text), at, template=at != "spec.workload")]]


def template_shape_problems(spec: JobSpec) -> list[FieldProblem]:
    """Fields of the job's pod templates (its own, each alternative's merged over it as the agent renders that
    alternative, each inside its workload object) that are not of the type the agent renders into, keys that are
    likely typos of a Kubernetes field, and a rendered pod spec without containers (not a workload's: its
    member's API server refuses that itself)."""
    base = _object(spec.pod_template_json)
    found = _checked_keys(base, "spec.template") if spec.pod_template_json else []
    said = {field for field, _ in found}
    for i, alt in enumerate(spec.accelerators):
        if alt.pod_template_json:
            at = f"spec.accelerators[{i}].template"
            over = _object(alt.pod_template_json)
            found += key_findings(over, at)[0]
            merged = merged_over(base, over)
            found += [(field.replace("spec.template", at, 1), problem)
                      for field, problem in shape_problems(merged, "spec.template") + containers_problems(
                          merged, "spec.template") if field not in said]
    if spec.workload_json:
        for path, template in pod_templates(_object(spec.workload_json)):
            at = f"spec.workload.{path}" if path else "spec.workload"
            shape = shape_problems(template, at) + key_findings(template, at, whole=False)[0]
            found += shape or _extended_without_limits(template, at)
    else:
        found += [f for f in _below_requests(base, spec, "spec.template") if f[0] not in said]
    return [FieldProblem(field, problem) for field, problem in found]


def _checked_keys(template: dict[str, Any], at: str) -> list[tuple[str, str]]:
    """The job's own template: its types, its keys' typos, and its containers where it gives a pod spec (not
    said again beside a misspelt `containers`, which says it)."""
    typos = key_findings(template, at)[0]
    misspelt = any(field.startswith(f"{at}.spec") and problem.endswith("did you mean containers?")
                   for field, problem in typos)
    return shape_problems(template, at) + typos + ([] if misspelt else containers_problems(template, at))


def template_key_warnings(spec: JobSpec) -> list[str]:
    """Keys of the job's pod templates that are no Kubernetes field the federator knows (`podfields`) and no
    likely typo of one (those are refused): a newer Kubernetes may have them, so the job is accepted, but the
    user hears that a member's API server may drop or refuse them."""
    texts = [("spec.template", spec.pod_template_json)]
    texts += [(f"spec.accelerators[{i}].template", a.pod_template_json) for i, a in enumerate(spec.accelerators)]
    found = [w for at, text in texts if text for w in key_findings(_object(text), at)[1]]
    if spec.workload_json:
        found += [w for path, template in pod_templates(_object(spec.workload_json))
                  for w in key_findings(template, f"spec.workload.{path}" if path else "spec.workload", whole=False)[1]]
    return [f"{field}: {text}" for field, text in found]


def accelerator_problems(spec: JobSpec) -> list[FieldProblem]:
    """What the job's pod templates ask of accelerators beyond what it declares (`template_accelerators`), which
    container the annotation chooses, and how an alternative's override merges (`podtemplates.merged_over`):
    each template the agent renders, checked as it renders it. Called once the templates are of the right shape."""
    if spec.workload_json:
        workload = _object(spec.workload_json)
        found = [p for path, template in pod_templates(workload)
                 for p in brought_problems(template, f"spec.workload.{path}" if path else "spec.workload")]
        found += autoscaler_problems(workload)
        found += _trainjob_partitions(spec, workload)
        if (workload.get("apiVersion"), workload.get("kind")) == ("kubeflow.org/v1", "PyTorchJob"):
            found += [(f"spec.workload.{field}", problem) for field, problem in elastic_problems(workload)]
        found += [p for path, template in pod_templates(workload) if asks_accelerator(template)
                  for p in pinned_model_problems(template, f"spec.workload.{path}" if path else "spec.workload",
                                                 ways=_ways(spec))]
        for path, override in pod_spec_overrides(workload):  # a TrainJob's pod spec fragments, merged by its trainer
            at = f"spec.workload.{path}"
            found += [(field.replace(f"{at}.~.spec", at, 1), problem)
                      for field, problem in brought_problems({"spec": override}, f"{at}.~")
                      + pinned_model_problems({"spec": override}, f"{at}.~", ways=_ways(spec))]
        return [FieldProblem(field, problem) for field, problem in found]
    base = _object(spec.pod_template_json)
    found = _rendered(base, "spec.template")
    said = set(found)  # an alternative is not blamed for what it takes from the job's template
    for i, alt in enumerate(spec.accelerators):
        if alt.pod_template_json:
            at = f"spec.accelerators[{i}].template"
            over = _object(alt.pod_template_json)
            merged = merged_over(base, over)  # as the agent renders this alternative
            found += override_problems(base, over, at)
            found += [(field.replace("spec.template", at, 1), problem)
                      for field, problem in _rendered(merged, "spec.template")
                      if (field, problem) not in said]
    return [FieldProblem(field, problem) for field, problem in found + _pin_problems(spec, base)]


#: The partition markers (model/sharing.py PARTITION_MARKERS) of partitions asked by a resource of their own
#: (nvidia.com/mig-1g.10gb, huawei.com/Ascend910-5c.1cpu.16g), never by the whole device's.
_OWN_RESOURCE = ("MIG", "VNPU")


def _trainjob_partitions(spec: JobSpec, workload: dict[str, Any]) -> list[tuple[str, str]]:
    """A TrainJob naming a MIG profile or a vNPU template in acceleratorModels: its runtime makes the pods from
    `resourcesPerNode`, which the agent does not rewrite to the partition's own resource, so on a MIG pool it
    stayed Pending and on a vNPU pool it could run on whole chips. Refused here rather than at every member's
    launch (kubeflow.py `whole_devices_only`). Not an AMD compute partition (MI300X-CPX): its pods ask
    `amd.com/gpu` as the trainer does, one per partition, and the node selector takes them to the partitioned
    node. A workload job's alternatives all come from acceleratorModels (jobfile.parse_job refuses
    spec.accelerators beside spec.workload)."""
    if (str(workload.get("apiVersion", "")).partition("/")[0], workload.get("kind")) != \
            ("trainer.kubeflow.org", "TrainJob"):
        return []
    return [(f"spec.acceleratorModels[{i}]", f"{alt.model} is a partition asked by a resource of its own, but "
                                             f"{TRAINJOB_WHOLE_DEVICES}: name a whole device, or declare the job "
                                             "without spec.workload")
            for i, alt in enumerate(spec.alternatives())
            if alt.model and names_partition(alt.model) and any(m in alt.model.upper() for m in _OWN_RESOURCE)]


def _ways(spec: JobSpec) -> list[Way]:
    """The ways the job may run, for the pin check: one per alternative, or per model of spec.acceleratorModels
    (a brought workload's alternatives of another vendor come from there too)."""
    return ways_of(spec.alternatives(), one_count=bool(spec.workload_json) or not spec.accelerators)


def _pin_problems(spec: JobSpec, base: dict[str, Any]) -> list[tuple[str, str]]:
    """The pins of the job's own template (judged for every way that renders them: each alternative whose own
    template does not pin that label too) and of each alternative's template (for that alternative alone)."""
    ways = _ways(spec)
    if not ways:
        return []
    own = [_selector(_object(a.pod_template_json)) for a in spec.accelerators] or [{}] * len(ways)
    found = [p for i, selector in enumerate(own) if selector
             for p in pinned_model_problems({"spec": {"nodeSelector": selector}}, f"spec.accelerators[{i}].template",
                                            ways=[ways[i]])]
    for key, value in _selector(base).items():
        keeping = [way for way, selector in zip(ways, own, strict=True) if key not in selector]
        found += pinned_model_problems({"spec": {"nodeSelector": {key: value}}}, "spec.template", ways=keeping)
    affinities = [_affinity(_object(a.pod_template_json)) for a in spec.accelerators] or [{}] * len(ways)
    found += [p for i, affinity in enumerate(affinities) if affinity
              for p in pinned_model_problems({"spec": {"affinity": merged_over(_affinity(base), affinity)}},
                                             f"spec.accelerators[{i}].template", ways=[ways[i]])]  # as rendered
    keeping = [way for way, affinity in zip(ways, affinities, strict=True) if not affinity]
    if _affinity(base) and keeping:
        found += pinned_model_problems({"spec": {"affinity": _affinity(base)}}, "spec.template", ways=keeping)
    return found


def _affinity(template: dict[str, Any]) -> dict[str, Any]:
    pod = template.get("spec")
    affinity = pod.get("affinity") if isinstance(pod, dict) else None
    return affinity if isinstance(affinity, dict) else {}


def _selector(template: dict[str, Any]) -> dict[str, Any]:
    pod = template.get("spec")
    selector = pod.get("nodeSelector") if isinstance(pod, dict) else None
    return selector if isinstance(selector, dict) else {}


def _rendered(template: dict[str, Any], at: str) -> list[tuple[str, str]]:
    return duplicate_problems(template, at) + choice_problems(template, at) + rendered_problems(template, at)


def accelerator_warnings(spec: JobSpec) -> list[str]:
    """A job declaring accelerators whose rendered template has several containers and no annotation choosing
    one: the accelerators go on the first, which may be a log shipper (outside testers, F5), so Submit says so."""
    if spec.workload_json or not (spec.resources.accelerator_milli or any(a.milli for a in spec.accelerators)):
        return []
    base = _object(spec.pod_template_json)
    templates = [("spec.template", base)] + [
        (f"spec.accelerators[{i}].template", merged_over(base, _object(a.pod_template_json)))
        for i, a in enumerate(spec.accelerators) if a.pod_template_json]
    out: dict[str, str] = {}  # an alternative that changes nothing of it is not said again
    for at, template in templates:
        containers = (template.get("spec") or {}).get("containers") if isinstance(template.get("spec"), dict) else None
        if isinstance(containers, list) and len(containers) > 1 and not chosen_name(template):
            first = containers[accelerator_container(template)]
            name = first.get("name") if isinstance(first, dict) else None
            said = (f"the accelerators go on the first of its {len(containers)} containers ({name!r}); to choose "
                    f"another, annotate the template {ACCELERATOR_CONTAINER_ANNOTATION}: <container name>")
            out.setdefault(said, f"{at}: {said}")
    return list(out.values())


def rendezvous_warnings(spec: JobSpec) -> list[str]:
    """A training job's own rendezvous env (MASTER_ADDR, MASTER_PORT, ...) or `subdomain`, which the agent replaces
    with its own where it renders the job as an Indexed Job (the default): said at submit, not found while
    debugging NCCL against a YAML that no longer holds (outside QA, ML user F6)."""
    if spec.kind is not JobKind.TRAINING or spec.workload_json:
        return []
    pod = _object(spec.pod_template_json).get("spec")
    pod = pod if isinstance(pod, dict) else {}
    out = []
    for _, i, container in containers_of(pod, ("containers",)):
        env = container.get("env")
        for j, var in enumerate(env if isinstance(env, list) else []):
            name = var.get("name") if isinstance(var, dict) else None
            if name in RENDEZVOUS_ENV:
                hint = f" (set the port with the annotation {MASTER_PORT_ANNOTATION})" if name == "MASTER_PORT" else ""
                out.append(f"spec.template.spec.containers[{i}].env[{j}] ({name}): replaced by the agent's "
                           f"rendezvous value{hint}")
    if "subdomain" in pod:
        out.append("spec.template.spec.subdomain: replaced by the name of the rendezvous Service the agent makes")
    return out


def _below_requests(template: dict[str, Any], spec: JobSpec, at: str) -> list[tuple[str, str]]:
    """Limits of the accelerator container (`template_accelerators.accelerator_container`) below what the agent
    requests for it: without a workload object the agent writes spec.resources as that container's requests, and
    every member's API server refuses a request above its limit (HTTP 422). Accepted, such a job was refused by
    every member in turn and placed again for ever (outside QA); it is refused here, naming the field."""
    containers = (template.get("spec") or {}).get("containers") if isinstance(template.get("spec"), dict) else None
    main = accelerator_container(template)
    if not isinstance(containers, list) or not containers or not isinstance(containers[main], dict):
        return []
    limits = (containers[main].get("resources") or {}).get("limits") if isinstance(
        containers[main].get("resources"), dict) else None
    if not isinstance(limits, dict):
        return []
    wanted = {"cpu": (Decimal(spec.resources.cpu_milli) / 1000, "spec.resources.cpu"),
              "memory": (Decimal(spec.resources.memory_bytes), "spec.resources.memory")}
    found = []
    for name, (request, source) in wanted.items():
        if name not in limits or not request:
            continue
        try:
            limit = parse_quantity(limits[name])
        except QuantityError:
            continue  # not a quantity: the member's API server says so
        if limit < request:
            found.append((f"{at}.spec.containers[{main}].resources.limits.{name}",
                          f"{limits[name]} is below {source} ({quantity_text(name, request)}), which the agent "
                          "requests for this container: raise the limit, or lower spec.resources"))
    return found


def _extended_without_limits(template: Mapping[str, Any], at: str) -> list[tuple[str, str]]:
    """Extended resources (an accelerator: nvidia.com/gpu, huawei.com/Ascend910, ...) a container of a brought
    workload requests without an equal limit. Every Kubernetes API server refuses such a pod ("Limit must be set
    for non overcommitable resources"), but only once the workload's controller makes it: a JobSet was placed,
    admitted by its member's Kueue (its quota held), and its controller then failed to make a Job, over and over,
    while the FederatedJob said only "0 of 2 replicas running" (outside QA, Kubernetes mode, F6). The agent
    writes both for the forms it renders itself; a brought workload is the user's, so it is refused here."""
    spec = template.get("spec")
    found: list[tuple[str, str]] = []
    for key, i, container in containers_of(spec if isinstance(spec, dict) else {}, ("containers", "initContainers")):
        resources = container.get("resources")
        if not isinstance(resources, dict):
            continue
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for name, amount in requests.items():
            if not _extended(str(name)):
                continue
            where = f"{at}.spec.{key}[{i}].resources.limits"
            if name not in limits:
                found.append((where, f"{name}: requested ({amount}) but not limited; Kubernetes takes an "
                                     f"accelerator (an extended resource) only with a limit equal to its request: "
                                     f"add limits: {{{name}: {amount}}}"))
                continue
            try:
                equal = parse_quantity(limits[name]) == parse_quantity(amount)
            except QuantityError:
                continue  # not a quantity: shape_problems or the member's API server says so
            if not equal:
                found.append((f"{where}.{name}", f"{limits[name]} is not its request ({amount}); Kubernetes "
                                                 "takes an extended resource only with the two equal"))
    return found


def _extended(name: str) -> bool:
    """A Kubernetes extended resource: a domain-prefixed name outside kubernetes.io (nvidia.com/gpu), not cpu,
    memory, ephemeral-storage or hugepages-*."""
    domain, slash, _ = name.partition("/")
    return bool(slash) and not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def quantity_text(name: str, amount: Decimal) -> str:
    """A request as a person writes it: cpu "4" or "0.5", memory "32Gi"."""
    return format_bytes(int(amount)) if name == "memory" else format_accelerators(int(amount * 1000))


def _owned(node: object, at: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        meta = node.get("metadata")
        if isinstance(meta, dict):
            found += [(f"{at}.metadata.{key}", problem) for key, problem in _OWNED_FIELDS.items() if meta.get(key)]
            # The agent's marks (podtemplates.AGENT_KEYS) are stamped on every template it renders, but not on one
            # a kind keeps where it does not look (a RayJob's submitterPodTemplate): a job carrying another
            # placement's id there had its pods counted as that placement's, so no job may carry them (red team).
            for part in ("labels", "annotations"):
                keys = meta.get(part)
                found += [(f"{at}.metadata.{part}[{key}]", "is the agent's: it marks the pods of a placement on a "
                                                           "member, and a job may not claim another's")
                          for key in (sorted(keys) if isinstance(keys, dict) else ()) if key in AGENT_KEYS]
        for key, value in node.items():
            if key != "metadata":
                found += _owned(value, f"{at}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _owned(item, f"{at}[{i}]")
    return found


def pod_security_problems(spec: JobSpec, *, policy: PodSecurity) -> list[FieldProblem]:
    """What the job's pod templates break at the federator's pod security level."""
    base = _object(spec.pod_template_json)
    found = check_template(base, policy=policy)
    problems = [FieldProblem(f"spec.template.{v.field}", v.problem) for v in found]
    said = {str(v) for v in found}  # an alternative is not blamed for what it takes from the job's template
    for i, alt in enumerate(spec.accelerators):
        if not alt.pod_template_json:
            continue
        merged = merged_over(base, _object(alt.pod_template_json))  # as the agent renders this alternative
        problems += [FieldProblem(f"spec.accelerators[{i}].template.{v.field}", v.problem)
                     for v in check_template(merged, policy=policy) if str(v) not in said]
    if spec.workload_json:
        workload = _object(spec.workload_json)
        problems += [FieldProblem(f"spec.workload.{v.field}", v.problem)
                     for v in check_object(workload, policy=policy)]
    elif policy.level is PodSecurityLevel.RESTRICTED and not (base.get("spec") or {}).get("containers"):
        problems.append(FieldProblem("spec.template.spec.containers", 'must be given under pod security '
                                     '"restricted": the container the federator makes by default sets no '
                                     "securityContext"))
    return problems


def _object(text: str) -> dict[str, Any]:
    """A spec's JSON text as intake has already checked it (an object, or empty)."""
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


__all__ = ["accelerator_problems", "accelerator_warnings", "owned_problems", "pod_security_problems",
           "template_key_warnings", "template_shape_problems"]
