"""Check a member's kube-scheduler settings against what the federator's resource model assumes.

The federator decides with a resource model (per accelerator model, nodes by
free devices) and scores clusters by how tightly work packs. A member whose
kube-scheduler spreads pods (NodeResourcesFit's default LeastAllocated) puts
a one-GPU pod on an empty eight-GPU node, breaking the node the federator
counted on for a gang, and the histogram it reported goes stale under it.
Members should score NodeResourcesFit with MostAllocated (or a rising
RequestedToCapacityRatio) including their accelerator resources.

The agent reads the member's KubeSchedulerConfiguration where it is given one
(`federator agent --scheduler-config FILE`: the file, or a ConfigMap holding
it as `kubectl get cm -o yaml` prints it), warns, and labels its cluster with
SCORING_LABEL so operators see it on the MemberCluster and in `get clusters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from federator.yamltext import YamlFileError, load_yaml_text

SCORING_LABEL = "federator.io/member-scheduler-scoring"
_HOST_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage", "pods"})
_PACKING = frozenset({"MostAllocated", "RequestedToCapacityRatio"})


@dataclass(frozen=True, slots=True)
class SchedulerCheck:
    """What the member's scheduler does with accelerators: the scoring strategy, and what is wrong."""

    scoring: str  # the label value: MostAllocated, LeastAllocated, RequestedToCapacityRatio or Unknown
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_scheduler_config(text: str, *, source: str = "scheduler config") -> SchedulerCheck:
    """Check a KubeSchedulerConfiguration (or a ConfigMap holding one); problems name the field."""
    try:
        doc = load_yaml_text(text)
    except YamlFileError as exc:
        return SchedulerCheck("Unknown", (f"{source}: {exc}",))
    if isinstance(doc, Mapping) and doc.get("kind") == "ConfigMap":
        inner = [v for v in (doc.get("data") or {}).values()
                 if isinstance(v, str) and "KubeSchedulerConfiguration" in v]
        if not inner:
            return SchedulerCheck("Unknown", (f"{source}: data: no KubeSchedulerConfiguration in the ConfigMap",))
        return check_scheduler_config(inner[0], source=f"{source} (data)")
    if not isinstance(doc, Mapping) or doc.get("kind") != "KubeSchedulerConfiguration":
        return SchedulerCheck("Unknown", (f"{source}: kind: expected KubeSchedulerConfiguration",))
    profiles = doc.get("profiles") or [{"schedulerName": "default-scheduler"}]
    if not isinstance(profiles, list):
        return SchedulerCheck("Unknown", (f"{source}: profiles: must be a list",))
    scorings: list[str] = []
    problems: list[str] = []
    for i, profile in enumerate(profiles):
        if not isinstance(profile, Mapping):
            problems.append(f"{source}: profiles[{i}]: must be a mapping")
            continue
        name = profile.get("schedulerName", "default-scheduler")
        scoring, problem = _profile(profile, f"{source}: profiles[{i}] ({name})")
        scorings.append(scoring)
        if problem:
            problems.append(problem)
    scoring = scorings[0] if len(set(scorings)) == 1 else "Mixed"
    return SchedulerCheck(scoring, tuple(problems))


def _profile(profile: Mapping[str, Any], where: str) -> tuple[str, str]:
    args: Mapping[str, Any] = {}
    for j, entry in enumerate(profile.get("pluginConfig") or []):
        if isinstance(entry, Mapping) and entry.get("name") == "NodeResourcesFit":
            args = entry.get("args") or {}
            where = f"{where}.pluginConfig[{j}].args.scoringStrategy"
            break
    strategy = args.get("scoringStrategy") or {} if isinstance(args, Mapping) else {}
    kind = str(strategy.get("type", "LeastAllocated")) if isinstance(strategy, Mapping) else "Unknown"
    if kind not in _PACKING:
        return kind, (f"{where}: NodeResourcesFit scores {kind}, which spreads accelerator pods over nodes and "
                      f"fragments them under the federator's resource model; use MostAllocated with the "
                      f"accelerator resources (docs/kubernetes.md, Member scheduler settings)")
    resources = strategy.get("resources") or [{"name": "cpu"}, {"name": "memory"}]
    names = {str(r.get("name")) for r in resources if isinstance(r, Mapping)}
    if not names - _HOST_RESOURCES:
        return kind, (f"{where}.resources: {kind} weighs only {', '.join(sorted(names))}; add the accelerator "
                      f"resources (such as nvidia.com/gpu) with a weight, or accelerators are still spread")
    return kind, ""


__all__ = ["SCORING_LABEL", "SchedulerCheck", "check_scheduler_config"]
