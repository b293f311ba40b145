"""A job's pod templates as a member renders them: an accelerator alternative's template over the job's.

Its own module because three parties must merge alike and none may import the
others: the federator checks the merged template at submit (`server/templates`),
the agent renders it for the chosen alternative (`backends/kube`) and checks it
against the member's own pod security level, and the scheduler reads what it
needs of a member's level (`security/podsecurity_member.needed_by`). Pure: plain dicts
in and out.

`shape_problems` is the shape of a template the agent renders into (it adds
labels, a node selector, tolerations, resources and environment variables):
a template the member's API server would refuse for its content is the
member's to refuse, but one whose fields are not even the right type would
break the agent's rendering, so the federator refuses it at submit, naming the
field, instead of sending it to every member in turn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from federator.podfields import (
    CONTAINER_FIELDS,
    EPHEMERAL_CONTAINER_FIELDS,
    KUBERNETES_VERSION,
    OBJECT_META_FIELDS,
    POD_SPEC_FIELDS,
    TEMPLATE_FIELDS,
)

# The labels and annotations by which a member's agent knows the objects and pods of a placement
# (backends/kube/workloads stamps them); a job may not carry them (server/templates.py).
PLACEMENT_LABEL = "federator.io/placement-id"
GENERATION_LABEL = "federator.io/generation"
PLACEMENT_ANNOTATION = "federator.io/placement-id"
JOB_ANNOTATION = "federator.io/job-id"
JOB_LABEL = "federator.io/job-id"  # the job's id as a label value (shortened with a hash past 63 characters)
REPLICAS_ANNOTATION = "federator.io/replicas"  # pods the placement runs in this cluster
# Which agent made the object or pod (backends/kube/agent_identity.py): its --cluster, --namespace and --server.
CLUSTER_ANNOTATION = "federator.io/cluster"
AGENT_NAMESPACE_ANNOTATION = "federator.io/agent-namespace"
FEDERATOR_ANNOTATION = "federator.io/federator"
# The placement's Launch.job_digest (agent.proto), kept on the member for a job applied again after a restore of
# the federator's store (server/reapplied.py); a job carrying it could pass its own workload off as another's.
JOB_DIGEST_ANNOTATION = "federator.io/job-digest"
# The Launch's placement.accelerator_model, kept on the member so a restarted agent says which model a placement runs
# on (JobUpdate.accelerator_model; server/adoption.py books an adopted placement on it).
ACCELERATOR_MODEL_ANNOTATION = "federator.io/accelerator-model"
# The Launch's seal (agent.proto, Launch.seal), kept on the member so a restarted agent says it back: the federator
# adopts a placement after a restore of its store only with it (server/seals.py).
LAUNCH_SEAL_ANNOTATION = "federator.io/launch-seal"
AGENT_KEYS = frozenset({PLACEMENT_LABEL, PLACEMENT_ANNOTATION, GENERATION_LABEL, JOB_ANNOTATION, REPLICAS_ANNOTATION,
                        CLUSTER_ANNOTATION, AGENT_NAMESPACE_ANNOTATION, FEDERATOR_ANNOTATION, JOB_DIGEST_ANNOTATION,
                        ACCELERATOR_MODEL_ANNOTATION, LAUNCH_SEAL_ANNOTATION})
# The environment the agent writes into every container of a training placement's Indexed Job, for the
# rendezvous (backends/kube/workloads/rendezvous.py), in place of a template's own; Submit warns of those.
RENDEZVOUS_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NNODES", "NODE_RANK", "RANK", "PET_MASTER_ADDR",
                  "PET_MASTER_PORT", "PET_NNODES", "PET_NODE_RANK", "PET_NPROC_PER_NODE")
MASTER_PORT_ANNOTATION = "federator.io/master-port"  # a job's rendezvous port (MASTER_PORT), 29500 without it


CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
"""Every list of containers a pod spec has: what merges by name, what the submit checks and the agent walk."""
_CONTAINER_LISTS = frozenset(CONTAINER_LISTS)


def containers_of(pod: Mapping[str, Any], lists: Iterable[str] = CONTAINER_LISTS
                  ) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(list key, index, container) for every container mapping in `lists` of a pod spec. The one walk over a
    pod's containers: a template is the user's JSON, so a list or a container of the wrong type is passed over
    here (`shape_problems` names it), never a traceback in whichever check reads it first."""
    for key in lists:
        items = pod.get(key)
        for i, c in enumerate(items if isinstance(items, list) else ()):
            if isinstance(c, dict):
                yield key, i, c


def merged_over(base: Any, over: Any) -> Any:
    """`over` merged into `base`: mappings key by key; a list of containers by name, as Kubernetes' strategic
    merge does (an override container with no name: by position, as before names were read); other lists item
    by position. How an accelerator alternative's template overrides the job's (the agent renders it; the
    federator checks it at submit). By position, an override `[{name: trainer}]` over `[sidecar, trainer]`
    renamed the sidecar and the member refused the duplicate name on every try (outside testers, F5)."""
    if isinstance(base, dict) and isinstance(over, dict):
        merge = {k: (_containers_over if k in _CONTAINER_LISTS else merged_over)(base.get(k), v)
                 for k, v in over.items()}
        return {**base, **merge}
    if isinstance(base, list) and isinstance(over, list):
        return [merged_over(b, o) for b, o in zip(base, over, strict=False)] + base[len(over):] + over[len(base):]
    return over


def _containers_over(base: Any, over: Any) -> Any:
    """Containers of `over` merged into `base`'s: a named one into the base's of that name (appended when the base
    has none: the submit check refuses that), an unnamed one into the base's at its position."""
    if not (isinstance(base, list) and isinstance(over, list)):
        return merged_over(base, over)
    out = list(base)
    index = {c.get("name"): i for i, c in enumerate(base) if isinstance(c, dict) and isinstance(c.get("name"), str)}
    for i, item in enumerate(over):
        name = item.get("name") if isinstance(item, dict) else None
        at = index.get(name) if isinstance(name, str) else (i if i < len(base) else None)
        if at is None:
            out.append(item)
        else:
            out[at] = merged_over(out[at], item)
    return out


def override_problems(base: Any, over: Any, at: str) -> list[tuple[str, str]]:
    """An override naming a container the job's template does not have: merged by name, it would be a container
    of its own, with no image unless it gave one, run beside the job's (`at` is the override's path)."""
    base_pod = base.get("spec") if isinstance(base, dict) else None
    over_pod = over.get("spec") if isinstance(over, dict) else None
    if not isinstance(over_pod, dict):
        return []
    found = []
    for key in sorted(_CONTAINER_LISTS & over_pod.keys()):
        have = base_pod.get(key) if isinstance(base_pod, dict) else None
        names = {c.get("name") for c in have if isinstance(c, dict)} if isinstance(have, list) else set()
        items = over_pod[key]
        for i, item in enumerate(items if isinstance(items, list) else ()):
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name not in names:
                shown = ", ".join(sorted(str(n) for n in names if isinstance(n, str))) or "none"
                found.append((f"{at}.spec.{key}[{i}].name", f"{name!r} is not a container of spec.template "
                                                            f"({key}: {shown}); an override's containers merge "
                                                            "into the template's by name"))
    return found


def duplicate_problems(template: Any, at: str) -> list[tuple[str, str]]:
    """Two containers of one name in a pod spec (containers, init and ephemeral ones share one namespace): every
    member's API server refuses such a pod (HTTP 422), so the job could never run."""
    pod = template.get("spec") if isinstance(template, dict) else None
    if not isinstance(pod, dict):
        return []
    seen: set[str] = set()
    found = []
    for key in ("containers", "initContainers", "ephemeralContainers"):
        items = pod.get(key)
        for i, item in enumerate(items if isinstance(items, list) else ()):
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name:
                if name in seen:
                    found.append((f"{at}.spec.{key}[{i}].name", f"{name!r} is the name of another container of "
                                                                "the pod; container names must be unique"))
                seen.add(name)
    return found


def shape_problems(template: Any, at: str) -> list[tuple[str, str]]:
    """(field, problem) for each field of a pod template (`{metadata, spec}`) that is not of the type the agent
    renders into; `at` is the template's path. Absent fields are fine: the agent fills them in; so are null
    lists and maps it only reads, but not a null `metadata`, `spec` or `resources`, which it writes into."""
    if not isinstance(template, dict):
        return [(at, "must be a pod template (a mapping of metadata and spec)")]
    found: list[tuple[str, str]] = []
    if "metadata" in template:
        meta = template["metadata"]
        if not isinstance(meta, dict):
            found.append((f"{at}.metadata", f"must be a mapping (labels, annotations){_null(meta)}"))
        else:
            for key in ("labels", "annotations"):
                found += _string_map(meta.get(key), f"{at}.metadata.{key}", "names to strings")
    if "spec" not in template:
        return found
    spec = template["spec"]
    if not isinstance(spec, dict):
        return [*found, (f"{at}.spec", f"must be a pod spec (a mapping){_null(spec)}")]
    found += _string_map(spec.get("nodeSelector"), f"{at}.spec.nodeSelector", "label names to values")
    found += _list_of_maps(spec.get("tolerations"), f"{at}.spec.tolerations", "toleration")
    for key in ("containers", "initContainers"):
        containers = spec.get(key)
        if containers is None:
            continue
        if not isinstance(containers, list):
            found.append((f"{at}.spec.{key}", "must be a list of containers"))
            continue
        for i, container in enumerate(containers):
            where = f"{at}.spec.{key}[{i}]"
            if not isinstance(container, dict):
                found.append((where, "must be a container (a mapping)"))
                continue
            found += _list_of_maps(container.get("env"), f"{where}.env", "variable ({name, value})")
            if "resources" not in container:
                continue
            resources = container["resources"]
            if not isinstance(resources, dict):
                found.append((f"{where}.resources", f"must be a mapping (requests, limits){_null(resources)}"))
                continue
            for part in ("requests", "limits"):
                found += _string_map(resources.get(part), f"{where}.resources.{part}", "resource names to quantities",
                                     values=False)
    return found


def key_findings(template: Any, at: str, *, whole: bool = True) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(problems, warnings) about the keys of a pod template, its metadata, its pod spec and each container, as
    (field, text), against the Kubernetes field names (`podfields`); `at` is the template's path.

    A key differing from a known field only in case, or by a letter or two, is a problem (`containerz`: the pod
    would have had no containers and the agent would have run its placeholder); any other unknown key is a
    warning: a newer Kubernetes may have it, and the member's API server will drop or refuse what it does not
    know. `whole` (a template the agent renders) also refuses any key of the template beside metadata and spec,
    which a PodTemplateSpec never had; a template found inside a brought workload is checked from its metadata
    and spec only (`pod_templates` finds mappings that merely look like templates)."""
    problems: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    if not isinstance(template, dict):
        return problems, warnings
    if whole:
        for key in template:
            if key not in TEMPLATE_FIELDS:
                hint = _typo_of(key, TEMPLATE_FIELDS)
                problems.append((_field(at, key), "is not a field of a pod template, which has only metadata and "
                                                  "spec" + (f"; did you mean {hint}?" if hint else "")))
    parts: list[tuple[Any, str, frozenset[str], str]] = [
        (template.get("metadata"), f"{at}.metadata", OBJECT_META_FIELDS, "object metadata"),
        (template.get("spec"), f"{at}.spec", POD_SPEC_FIELDS, "pod spec")]
    pod = template.get("spec")
    for key, i, container in containers_of(pod if isinstance(pod, dict) else {}):
        fields = EPHEMERAL_CONTAINER_FIELDS if key == "ephemeralContainers" else CONTAINER_FIELDS
        parts.append((container, f"{at}.spec.{key}[{i}]", fields, "container"))
    for node, where, known, what in parts:
        for key in node if isinstance(node, dict) else ():
            if key in known:
                continue
            hint = _typo_of(key, known)
            if hint is not None:
                problems.append((_field(where, key), f"is not a field of a {what}; did you mean {hint}?"))
            else:
                warnings.append((_field(where, key), f"is not a field of a Kubernetes {KUBERNETES_VERSION} {what}: "
                                                     "the member's API server may drop it or refuse the job"))
    return problems, warnings


def containers_problems(template: Any, at: str) -> list[tuple[str, str]]:
    """A template that gives a pod spec without a container. The agent runs its placeholder (a busybox that
    sleeps, the demo's) where a job has no pod spec at all; one given with a pod spec, whose containers were
    left out or misspelled, had the placeholder run in place of the trainer, on the job's whole gang, and
    reported Succeeded (outside QA, F5). A template of metadata only still gets the placeholder."""
    pod = template.get("spec") if isinstance(template, dict) else None
    if not isinstance(pod, dict) or pod.get("containers"):
        return []
    return [(f"{at}.spec.containers", "is required where the template gives a pod spec: at least one container "
                                      "(name and image); without it the member would run a placeholder container, "
                                      "not your workload")]


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _field(at: str, key: Any) -> str:
    text = str(key)
    return f"{at}.{text}" if _PLAIN_KEY.match(text) else f"{at}[{text[:63]}]"


def _typo_of(key: Any, known: frozenset[str]) -> str | None:
    """The known field `key` most likely misspells: the same but for case, else within one edit (keys of 4 to 7
    characters) or two (longer ones); None for a key unlike every field (a newer Kubernetes' field, say)."""
    text = str(key)
    lower = text.lower()
    for name in sorted(known):
        if name.lower() == lower:
            return name
    limit = 0 if len(text) < 4 else 1 if len(text) < 8 else 2
    if not limit:
        return None
    distance, name = min((_edits(lower, n.lower(), limit), n) for n in sorted(known))
    return name if distance <= limit else None


def _edits(a: str, b: str, limit: int) -> int:
    """Edits (insertions, deletions, substitutions, swaps of neighbours) from `a` to `b`; past `limit`, limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return min(row[-1], limit + 1)


def _null(value: Any) -> str:
    return ", not null: leave it out" if value is None else ""


def _string_map(value: Any, at: str, what: str, *, values: bool = True) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict) or (values and not all(isinstance(v, str) for v in value.values())):
        return [(at, f"must map {what}")]
    return []


def _list_of_maps(value: Any, at: str, what: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [(at, f"must be a list, each item a {what}")]
    return [(f"{at}[{i}]", f"must be a {what} (a mapping)")
            for i, item in enumerate(value) if not isinstance(item, dict)]


__all__ = ["AGENT_KEYS", "AGENT_NAMESPACE_ANNOTATION", "CLUSTER_ANNOTATION", "FEDERATOR_ANNOTATION",
           "MASTER_PORT_ANNOTATION", "RENDEZVOUS_ENV", "GENERATION_LABEL", "JOB_ANNOTATION", "JOB_DIGEST_ANNOTATION",
           "ACCELERATOR_MODEL_ANNOTATION", "LAUNCH_SEAL_ANNOTATION",
           "JOB_LABEL",
           "PLACEMENT_ANNOTATION", "PLACEMENT_LABEL", "REPLICAS_ANNOTATION", "containers_problems",
           "duplicate_problems", "key_findings", "merged_over", "override_problems", "shape_problems"]
